-- A room member's signal or line, recorded for reports in the same round trip as the
-- membership read that signalling and room text already make (matching/roomlog.py).
--
-- KEYS[1]  the room key (mm:room:<match>): "<user a>:<user b>" while the room is open
-- KEYS[2]  the record (mm:sig:<match> or mm:lines:<match>), a list
-- ARGV[1]  the sender's user id
-- ARGV[2]  the entry (JSON)
-- ARGV[3]  how many entries the record keeps (the newest)
-- ARGV[4]  the record's TTL in seconds (re-armed by each write)
--
-- Returns the room key's value, or false when it is missing (the caller reads PostgreSQL and
-- calls again once the key is written back). Appends only when ARGV[1] is one of the two
-- members, so a stranger's frame (refused by the caller) never lands in a room's record.
-- The record never holds more than ARGV[3] entries and always has a TTL.
local members = redis.call('GET', KEYS[1])
if not members then
  return false
end
local a, b = string.match(members, '^(%d+):(%d+)$')
if a == ARGV[1] or b == ARGV[1] then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return members
