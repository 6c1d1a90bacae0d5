-- Extend a lock only if it is still ours.
-- KEYS[1] the lock; ARGV[1] our token; ARGV[2] its new time to live, milliseconds. Returns 1 when renewed.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
