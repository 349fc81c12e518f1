--[[
matching/liveness.lua: whether the members of open matches still have a connection in Meet.

A connection "attends" Meet once it sends a Meet frame (match.enter, match.current, ...).
The web process that holds it vouches for it every grace / 3 (matching.gateway), so the
connections of a killed process stop counting at most one grace after their last refresh;
a clean close removes its entry at once. Celery Beat's sweep (matching.tasks.pool_sweep)
asks "gone" for the users whose last connection has been away for the grace and ends their
match (reason partner_left). Matching keeps this itself rather than asking presence: the two
apps are on one layer and independent, and a Meet member is someone with a Meet view open,
not anyone online.

Layout under P = ARGV[1]:
  P:conns:<uid>  zset  channel name -> vouched for until (ms); expires 2 x grace after a write
  P:live         zset  uid -> until when its connections are vouched for (ms), for users in a
                       match only (P:cur:<uid>, matching/pool.py); the sweep reads it by score
Keys are built here, not passed in KEYS: the bus is one Redis (DESIGN.md), not a Cluster.

ARGV: 1 prefix, 2 op, 3 now ms, 4 grace ms, 5.. op arguments:
  refresh uid chan uid chan ... -> 1: these connections are open now
  leave   uid chan              -> 1 if it was the user's last connection and they are in a
                                   match (the grace starts now), else 0
  watch   uid uid ...           -> 1: users just matched; gone after the grace unless a
                                   connection of theirs vouches for them
  gone    limit                 -> uids in a match whose every connection has been away for
                                   the grace (each taken off P:live, so one sweep reports it)
Guarantees: a connection refreshed after its leave is impossible (the gateway drops it from
its refresh set before queuing the leave); "gone" is decided atomically against the latest
refresh, so a reconnect within the grace always wins.
]]

local P = ARGV[1]
local op = ARGV[2]
local now = tonumber(ARGV[3])
local GRACE = tonumber(ARGV[4])
local LIVE = P .. ':live'

local function conns_key(uid) return P .. ':conns:' .. uid end
local function in_match(uid) return redis.call('EXISTS', P .. ':cur:' .. uid) == 1 end

if op == 'refresh' then
  for i = 5, #ARGV, 2 do
    local uid, chan = ARGV[i], ARGV[i + 1]
    local conns = conns_key(uid)
    redis.call('ZADD', conns, now + GRACE, chan)
    redis.call('ZREMRANGEBYSCORE', conns, '-inf', '(' .. now)
    redis.call('PEXPIRE', conns, 2 * GRACE)
    if in_match(uid) then redis.call('ZADD', LIVE, 'GT', now + GRACE, uid) end
  end
  return 1
elseif op == 'leave' then
  local uid, chan = ARGV[5], ARGV[6]
  local conns = conns_key(uid)
  redis.call('ZREM', conns, chan)
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', '(' .. now)
  if redis.call('ZCARD', conns) == 0 and in_match(uid) then
    redis.call('ZADD', LIVE, 'GT', now + GRACE, uid)
    return 1
  end
  return 0
elseif op == 'watch' then
  for i = 5, #ARGV do redis.call('ZADD', LIVE, 'GT', now + GRACE, ARGV[i]) end
  return 1
elseif op == 'gone' then
  local due = redis.call('ZRANGEBYSCORE', LIVE, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
  local gone = {}
  for _, uid in ipairs(due) do
    local conns = conns_key(uid)
    redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
    local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
    if top[1] then
      redis.call('ZADD', LIVE, top[2], uid) -- a connection vouches for them until then
    else
      redis.call('ZREM', LIVE, uid)
      if in_match(uid) then gone[#gone + 1] = uid end
    end
  end
  return gone
end
return redis.error_reply('unknown op ' .. tostring(op))
