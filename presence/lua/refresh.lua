-- refresh.lua: a server process' sockets are alive now; keep each alive until now + ttl.
-- The batched form of touch.lua, for the process' periodic refresh of every socket it holds
-- (presence.gateway): one call per few hundred sockets instead of one per socket.
-- KEYS[1] presence:users, KEYS[2] presence:seen (see touch.lua)
-- ARGV: now, ttl seconds, last_seen write interval seconds, prefix of the per-user
-- connection sets ("<prefix>:presence:conns:"), prefix of the last_seen write throttles
-- ("<prefix>:presence:seenw:"), then uid, conn id, uid, conn id, ...
-- Returns {uids to announce online (not online before: e.g. taken offline while Redis was
-- away), uids whose Profile.last_seen is due a write}.
-- Guarantees: as touch.lua, per socket. The connection set keys are built here, not passed
-- in KEYS (as in sweep.lua): fine on one Redis server; a Redis Cluster would need hash tags.
local now, ttl, every = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local announce, write = {}, {}
for i = 6, #ARGV, 2 do
  local uid, conn = ARGV[i], ARGV[i + 1]
  local conns = ARGV[4] .. uid
  redis.call('ZADD', conns, now + ttl, conn)
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', '(' .. now)
  redis.call('EXPIRE', conns, math.ceil(ttl * 2) + 1)
  if not redis.call('ZSCORE', KEYS[1], uid) then
    announce[#announce + 1] = uid
  end
  local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  redis.call('ZADD', KEYS[1], top[2], uid)
  redis.call('HSET', KEYS[2], uid, ARGV[1])
  if redis.call('SET', ARGV[5] .. uid, '1', 'NX', 'EX', every) then
    write[#write + 1] = uid
  end
end
return {announce, write}
