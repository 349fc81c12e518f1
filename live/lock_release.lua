-- Release a lock only if the caller still owns it (compare-and-delete).
-- KEYS[1]: the lock key.  ARGV[1]: the caller's token (set with SET NX PX).
-- Returns 1 when this caller's lock was deleted, 0 when it had expired or belongs to
-- someone else: a slow owner whose lock timed out can never delete its successor's lock.
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
