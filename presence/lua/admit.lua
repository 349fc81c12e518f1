-- admit.lua: may connection ARGV[2] of user ARGV[1] open? Count the user's live connections
-- and, below the limit, register this one and do what touch.lua does, in one step
-- (Hardening 7: a count read, then a registration, let 100 racing connects open 50; and one
-- script call per connect instead of an admission and a touch).
-- KEYS[1] presence:conns:<uid>, KEYS[2] presence:users, KEYS[3] presence:seen,
-- KEYS[4] presence:seenw:<uid> (see touch.lua)
-- ARGV: uid, conn id, now, ttl seconds, limit (connections per user), last_seen write
-- interval seconds
-- Returns {admitted (0/1), announce_online (0/1), write_last_seen (0/1)}; not admitted:
-- nothing written.
-- Guarantees: atomic, so however many connects race, over every server process, at most
-- `limit` connections of a user are alive at once; expired entries (a dead process' sockets,
-- no longer refreshed) are pruned first and never count.
local uid, conn, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if not redis.call('ZSCORE', KEYS[1], conn) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return {0, 0, 0}
end
redis.call('ZADD', KEYS[1], now + ttl, conn)
redis.call('EXPIRE', KEYS[1], math.ceil(ttl * 2) + 1)
local was_online = redis.call('ZSCORE', KEYS[2], uid)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], uid)
redis.call('HSET', KEYS[3], uid, ARGV[3])
local write = redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[6])
return {1, was_online and 0 or 1, write and 1 or 0}
