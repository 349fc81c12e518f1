-- sweep.lua: find users whose deadline passed; take offline those with no live connection.
-- KEYS[1] presence:users, KEYS[2] presence:seen (see touch.lua)
-- ARGV: now, batch size, prefix of the per-user connection sets ("<prefix>:presence:conns:")
-- Returns a flat list {uid, last_seen, uid, last_seen, ...} of users now offline.
-- Guarantees: atomic, so a user is taken offline (and so announced) by one sweep only, and
-- never while a connection of theirs is alive: a user whose deadline was stale (the
-- connection that set it closed, others remain) just gets a fresh deadline.
-- The connection set keys are built here, not passed in KEYS: the candidates are only known
-- inside the script. Fine on one Redis server; a Redis Cluster would need hash tags.
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)
local out = {}
for _, uid in ipairs(due) do
  local conns = ARGV[3] .. uid
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', '(' .. now)
  local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', KEYS[1], top[2], uid)
  else
    redis.call('ZREM', KEYS[1], uid)
    out[#out + 1] = uid
    out[#out + 1] = redis.call('HGET', KEYS[2], uid) or ''
    redis.call('HDEL', KEYS[2], uid)
  end
end
return out
