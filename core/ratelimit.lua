--[[
core/ratelimit.lua: a fixed-window request counter (core.ratelimit.window_take; Meet uses it
for its 10 match requests per minute per user).

KEYS[1] the counter; ARGV[1] window in ms.
Returns {count after this request, ms until the window resets}.

Increment and expiry happen in one atomic step, so a crash between them cannot leave a
counter without a TTL (which would lock the user out for ever). A counter found without a
TTL (written by something else) gets one here.
]]
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
