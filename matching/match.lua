--[[
matching/match.lua: the Meet pool and the match decision, atomic in Redis (issue #5).

Loaded once per client (redis-py register_script: EVALSHA, re-sent on NOSCRIPT). One file so
that "enter", "decide" and "leave" share one definition of the pool layout. Works on Redis
6.2 and 7 (Lua 5.1, no Redis 7-only commands). Keys are derived from the prefix ARGV[1]
rather than passed in KEYS: the bus is one Redis (DESIGN.md), not a Cluster.

Layout under P = ARGV[1] (docs/subsystems/matching.md):
  P:t:<uid>                  hash  ticket: lang reg mode ints joined exp chan m
  P:ll:<lang>                zset  member -> joined ms, every waiting ticket of a language
  P:lr:<lang>:<reg>          zset  the same, one region
  P:il:<lang>:<interest>     zset  member -> joined ms, tickets with that interest
  P:ir:<lang>:<reg>:<int>    zset  the same, one region
  P:deadline                 zset  uid -> expiry ms (pool size = ZCARD)
  P:due                      zset  uid -> when its relaxation step next changes
  P:avoid:<uid>              zset  other uid -> avoid until ms (blocks: 9e15); "_" = complete
  P:cur:<uid>                string set when matched: the user may not enter again
A member is "<uid>:<reg>:<mode>" (reg "-" = none; mode p=prefer r=require a=any), so region
rules are checked without reading the candidate's ticket. Scores are joined times, so
ZRANGE 0 K-1 of any index returns its K longest-waiting tickets.

ARGV: 1 prefix, 2 op, 3 now ms, 4 ticket ttl ms, 5 grace ms (traces outlive the ticket this
long so the sweep can unindex them), 6 relax-1 ms, 7 relax-2 ms, 8 window K, 9 refine M,
10 recent-partner ms, 11 pending ms (cur key before the room exists), 12 pool max,
13 avoid-set ttl ms, 14 trending key ('' = off), 15 trending ttl ms, 16.. op arguments:
  enter  uid lang reg mode ints("a,b") chan decide(0|1) -> as decide, or
         {'waiting', step} / {'busy', cur} (already matched: the cur marker, the match id
         or '0' while the deciding process records it) / {'full'}
  decide uid -> {'matched', partner, shared("a,b"), partner chan, own chan, score}
         / {'waiting', step} / {'rebuild'} (avoid set missing) / {'gone'} (no ticket)
  leave  uid chan('' = any) -> 1 if a ticket was removed
  expire limit -> number of expired tickets removed (oldest deadlines first)
  due    limit -> uids whose relaxation step changed and need a new decision
  release uid value -> 1 if the user's cur marker held value and was removed (a marker
         left by a match that has ended: compare and delete, never another match's)

Guarantees: a decision reads at most (interests + 1) * K index entries, never the pool.
The chosen pair leaves the pool in the same script, so nobody is matched twice and two
seekers never take one candidate. Language is a hard filter (it is in every index key).
]]

local P = ARGV[1]
local op = ARGV[2]
local now = tonumber(ARGV[3])
local TTL = tonumber(ARGV[4])
local GRACE = tonumber(ARGV[5])
local RELAX1 = tonumber(ARGV[6])
local RELAX2 = tonumber(ARGV[7])
local K = tonumber(ARGV[8])
local M = tonumber(ARGV[9])
local RECENT = tonumber(ARGV[10])
local PENDING = tonumber(ARGV[11])
local POOL_MAX = tonumber(ARGV[12])
local AVOID_TTL = tonumber(ARGV[13])
local TREND_KEY = ARGV[14]
local TREND_TTL = tonumber(ARGV[15])

local function k(...)
  return P .. ':' .. table.concat({...}, ':')
end

local function split(csv)
  local out = {}
  for s in string.gmatch(csv, '[^,]+') do out[#out + 1] = s end
  return out
end

-- Relaxation (docs/subsystems/matching.md): 0 = a shared interest and, if preferred, the
-- same region; 1 = no shared interest needed; 2 = region preference dropped.
local function step_of(joined)
  local waited = now - joined
  if waited < RELAX1 then return 0 elseif waited < RELAX2 then return 1 end
  return 2
end

local function next_change(joined, step)
  if step == 0 then return joined + RELAX1 elseif step == 1 then return joined + RELAX2 end
  return nil
end

local function wants_same_region(reg, mode, step)
  return reg ~= '-' and (mode == 'r' or (mode == 'p' and step < 2))
end

-- Remove every trace of a ticket; return its fields {lang, reg, ints, m, chan} or nil.
local function unindex(uid)
  local tk = k('t', uid)
  local f = redis.call('HMGET', tk, 'lang', 'reg', 'ints', 'm', 'chan')
  redis.call('ZREM', k('deadline'), uid)
  redis.call('ZREM', k('due'), uid)
  if not f[1] then return nil end
  local lang, reg, m = f[1], f[2], f[4]
  redis.call('ZREM', k('ll', lang), m)
  if reg ~= '-' then redis.call('ZREM', k('lr', lang, reg), m) end
  for _, s in ipairs(split(f[3])) do
    redis.call('ZREM', k('il', lang, s), m)
    if reg ~= '-' then redis.call('ZREM', k('ir', lang, reg, s), m) end
  end
  redis.call('DEL', tk)
  return f
end

-- Every index expires TTL + GRACE after its last write: an idle pool leaves nothing behind
-- even when no sweep runs.
local function index_add(key, score, m)
  redis.call('ZADD', key, score, m)
  redis.call('PEXPIRE', key, TTL + GRACE)
end

local function decide(uid)
  local t = redis.call('HMGET', k('t', uid), 'lang', 'reg', 'mode', 'ints', 'joined', 'exp',
    'm', 'chan')
  if not t[1] then
    unindex(uid)
    return {'gone'}
  end
  if tonumber(t[6]) <= now then
    unindex(uid)
    return {'gone'}
  end
  local avoid = k('avoid', uid)
  if not redis.call('ZSCORE', avoid, '_') then return {'rebuild'} end
  local lang, reg, mode, joined, me = t[1], t[2], t[3], tonumber(t[5]), t[7]
  local myints = split(t[4])
  local step = step_of(joined)
  local same = wants_same_region(reg, mode, step)

  -- Candidate window: the K longest waiting of each of my interest lists (and of the
  -- language list once no shared interest is needed). Per member: cnt = lists it was
  -- seen in, full = of those, lists shorter than K (exact), joined = its score.
  local cnt, full, jnd, seen = {}, {}, {}, {}
  local members = {}
  local truncated = {}
  for _, s in ipairs(myints) do
    local key = same and k('ir', lang, reg, s) or k('il', lang, s)
    local arr = redis.call('ZRANGE', key, 0, K - 1, 'WITHSCORES')
    local cut = #arr >= 2 * K
    if cut then truncated[#truncated + 1] = key end
    for i = 1, #arr, 2 do
      local m = arr[i]
      if m ~= me then
        local n = cnt[m]
        if not n then
          n = 0
          full[m] = 0
          jnd[m] = tonumber(arr[i + 1])
          members[#members + 1] = m
        end
        cnt[m] = n + 1
        if cut then
          seen[key .. '|' .. m] = true
        else
          full[m] = full[m] + 1
        end
      end
    end
  end
  if step >= 1 then
    local key = same and k('lr', lang, reg) or k('ll', lang)
    local arr = redis.call('ZRANGE', key, 0, K - 1, 'WITHSCORES')
    for i = 1, #arr, 2 do
      local m = arr[i]
      if m ~= me and not cnt[m] then
        cnt[m], full[m], jnd[m] = 0, 0, tonumber(arr[i + 1])
        members[#members + 1] = m
      end
    end
  end
  -- Buckets by count; inside a bucket the longest waiting is picked lazily (no full sort:
  -- usually the first pick is taken).
  local buckets, top = {}, -1
  for _, m in ipairs(members) do
    local n = cnt[m]
    local b = buckets[n]
    if not b then
      b = {}
      buckets[n] = b
    end
    b[#b + 1] = m
    if n > top then top = n end
  end

  -- Walk best-first. Counts from lists shorter than K are exact; a list cut at K may hold
  -- a candidate further down, so up to M eligible candidates get their exact score.
  local T = #truncated
  local best, refined = nil, 0
  local function consider(m)
    local cu, creg, cmode = string.match(m, '^(%d+):([^:]+):(%a)$')
    if not cu or cu == uid then return end
    local cj = jnd[m]
    local cstep = step_of(cj)
    local need = (step == 0 or cstep == 0) and 1 or 0
    local ub = full[m] + T
    if ub < need then return end
    if best and (ub < best.score or (ub == best.score and cj >= best.joined)) then return end
    if (same or wants_same_region(creg, cmode, cstep)) and (reg == '-' or creg ~= reg) then
      return
    end
    local untl = redis.call('ZSCORE', avoid, cu)
    if untl and tonumber(untl) > now then return end
    local score = full[m]
    for _, key in ipairs(truncated) do
      if seen[key .. '|' .. m] or redis.call('ZSCORE', key, m) then score = score + 1 end
    end
    if T > 0 then refined = refined + 1 end
    if score < need or (best and (score < best.score
        or (score == best.score and cj >= best.joined))) then
      return
    end
    -- Only a candidate about to win is checked for expiry (stale tickets are rare: the
    -- sweep removes them); a stale one is cleaned up here and the walk goes on.
    local cexp = redis.call('HGET', k('t', cu), 'exp')
    if not cexp or tonumber(cexp) <= now then
      if not unindex(cu) then
        redis.call('ZREM', k('ll', lang), m)
        if creg ~= '-' then redis.call('ZREM', k('lr', lang, creg), m) end
        for _, s in ipairs(myints) do
          redis.call('ZREM', k('il', lang, s), m)
          if creg ~= '-' then redis.call('ZREM', k('ir', lang, creg, s), m) end
        end
      end
      return
    end
    best = {uid = cu, score = score, joined = cj}
  end
  for n = top, 0, -1 do
    local b = buckets[n]
    if best and (T == 0 or refined >= M or n + T < best.score) then break end
    if b then
      local left = #b
      while left > 0 do
        if best and (T == 0 or refined >= M) then break end
        local pick, pj = 1, jnd[b[1]]
        for i = 2, left do
          local j = jnd[b[i]]
          if j < pj or (j == pj and b[i] < b[pick]) then pick, pj = i, j end
        end
        local m = b[pick]
        b[pick] = b[left]
        b[left] = nil
        left = left - 1
        consider(m)
      end
    end
  end

  if not best then
    local nc = next_change(joined, step)
    if nc then index_add(k('due'), nc, uid) else redis.call('ZREM', k('due'), uid) end
    return {'waiting', tostring(step)}
  end

  local cf = unindex(best.uid)
  unindex(uid)
  local theirs = {}
  for _, s in ipairs(split(cf[3])) do theirs[s] = true end
  local shared = {}
  for _, s in ipairs(myints) do
    if theirs[s] then shared[#shared + 1] = s end
  end
  -- Recent partners, both ways: not paired again inside the window.
  for _, pair in ipairs({{uid, best.uid}, {best.uid, uid}}) do
    local ak = k('avoid', pair[1])
    redis.call('ZADD', ak, now + RECENT, pair[2])
    redis.call('PEXPIRE', ak, AVOID_TTL)
  end
  redis.call('SET', k('cur', uid), '0', 'PX', PENDING)
  redis.call('SET', k('cur', best.uid), '0', 'PX', PENDING)
  if TREND_KEY ~= '' and #shared > 0 then
    for _, s in ipairs(shared) do redis.call('ZINCRBY', TREND_KEY, 1, s) end
    redis.call('PEXPIRE', TREND_KEY, TREND_TTL)
  end
  return {'matched', best.uid, table.concat(shared, ','), cf[5] or '', t[8] or '',
    tostring(#shared)}
end

local function enter(uid, lang, reg, mode, ints, chan, do_decide)
  local cur = redis.call('GET', k('cur', uid))
  if cur then return {'busy', cur} end
  local tk = k('t', uid)
  local old = redis.call('HMGET', tk, 'joined', 'exp')
  local joined = now
  if old[1] and tonumber(old[2]) > now then
    joined = tonumber(old[1]) -- entering again keeps one ticket and its place in line
  elseif redis.call('ZCARD', k('deadline')) >= POOL_MAX then
    if not old[1] then return {'full'} end
  end
  if old[1] then unindex(uid) end -- a fresh ticket overwrites deadline and due anyway
  local m = uid .. ':' .. reg .. ':' .. mode
  local exp = now + TTL
  redis.call('HSET', tk, 'lang', lang, 'reg', reg, 'mode', mode, 'ints', ints,
    'joined', joined, 'exp', exp, 'chan', chan, 'm', m)
  redis.call('PEXPIRE', tk, TTL + GRACE)
  index_add(k('ll', lang), joined, m)
  if reg ~= '-' then index_add(k('lr', lang, reg), joined, m) end
  for _, s in ipairs(split(ints)) do
    index_add(k('il', lang, s), joined, m)
    if reg ~= '-' then index_add(k('ir', lang, reg, s), joined, m) end
  end
  index_add(k('deadline'), exp, uid)
  local step = step_of(joined)
  local nc = next_change(joined, step)
  if nc then index_add(k('due'), nc, uid) end
  if do_decide == '1' then return decide(uid) end
  return {'waiting', tostring(step)}
end

if op == 'enter' then
  return enter(ARGV[16], ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21], ARGV[22])
elseif op == 'decide' then
  return decide(ARGV[16])
elseif op == 'leave' then
  local chan = ARGV[17]
  local tchan = redis.call('HGET', k('t', ARGV[16]), 'chan')
  if not tchan then
    unindex(ARGV[16])
    return 0
  end
  if chan ~= '' and tchan ~= chan then return 0 end
  unindex(ARGV[16])
  return 1
elseif op == 'expire' then
  local uids = redis.call('ZRANGEBYSCORE', k('deadline'), '-inf', now, 'LIMIT', 0, ARGV[16])
  for _, u in ipairs(uids) do unindex(u) end
  return #uids
elseif op == 'release' then
  if redis.call('GET', k('cur', ARGV[16])) == ARGV[17] then
    return redis.call('DEL', k('cur', ARGV[16]))
  end
  return 0
elseif op == 'due' then
  return redis.call('ZRANGEBYSCORE', k('due'), '-inf', now, 'LIMIT', 0, ARGV[16])
end
return redis.error_reply('unknown op ' .. tostring(op))
