-- admit.lua: may connection ARGV[1] open? Count the user's live connections and, below the
-- limit, register this one, in one step (Hardening 7: a count read, then a registration,
-- let 100 racing connects open 50).
-- KEYS[1] presence:conns:<uid>  sorted set conn id -> expiry (see touch.lua)
-- ARGV: conn id, now, ttl seconds, limit (connections per user)
-- Returns 1 (admitted: the connection counts until now + ttl, then its process' refreshes
-- keep it counting) or 0 (limit reached: nothing written).
-- Guarantees: atomic, so however many connects race, over every server process, at most
-- `limit` connections of a user are alive at once; expired entries (a dead process' sockets,
-- no longer refreshed) are pruned first and never count.
local conn, now, ttl, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if not redis.call('ZSCORE', KEYS[1], conn) and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, conn)
redis.call('EXPIRE', KEYS[1], math.ceil(ttl * 2) + 1)
return 1
