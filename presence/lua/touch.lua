-- touch.lua: connection ARGV[2] of user ARGV[1] is alive now; keep it alive until now + ttl.
-- Runs at connect and on (throttled) heartbeats.
-- KEYS[1] presence:conns:<uid>  sorted set conn id -> expiry (unix seconds)
-- KEYS[2] presence:users        sorted set uid -> deadline; a member is announced online
-- KEYS[3] presence:seen         hash uid -> last activity (unix seconds)
-- KEYS[4] presence:seenw:<uid>  throttle of Profile.last_seen writes (exists = written lately)
-- ARGV: uid, conn id, now, ttl seconds, last_seen write interval seconds
-- Returns {announce_online (0/1), write_last_seen (0/1)}.
-- Guarantees: the user's deadline is the latest expiry of a live connection, so the sweep
-- never looks at them before their last connection can have expired; connections of dead
-- servers (no heartbeat) are pruned here and by sweep.lua.
local uid, conn, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, conn)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('EXPIRE', KEYS[1], math.ceil(ttl * 2) + 1)
local was_online = redis.call('ZSCORE', KEYS[2], uid)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], uid)
redis.call('HSET', KEYS[3], uid, ARGV[3])
local write = redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[5])
return {was_online and 0 or 1, write and 1 or 0}
