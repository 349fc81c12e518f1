-- leave.lua: connection ARGV[2] of user ARGV[1] closed cleanly.
-- KEYS[1] presence:conns:<uid>, KEYS[2] presence:users, KEYS[3] presence:seen (see touch.lua)
-- ARGV: uid, conn id, now, offline grace seconds
-- Returns the number of the user's connections still alive.
-- Guarantees: offline is never announced here. When the last connection goes, the user's
-- deadline becomes now + grace: a reconnect before then (a page reload) finds the user still
-- announced online and says nothing; otherwise the sweep announces offline after it.
local uid, conn, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREM', KEYS[1], conn)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('HSET', KEYS[3], uid, ARGV[3])
local live = redis.call('ZCARD', KEYS[1])
if live == 0 and redis.call('ZSCORE', KEYS[2], uid) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), uid)
end
return live
