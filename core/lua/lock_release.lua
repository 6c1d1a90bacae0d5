-- Release a lock only if it is still ours (taken with SET NX PX <token>): a holder that outlived its
-- lock must not delete the next holder's.
-- KEYS[1] the lock; ARGV[1] our token. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
