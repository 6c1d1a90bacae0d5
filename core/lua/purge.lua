-- Delete a DEAD message for good, and release its idempotency key when the key still names it.
--
-- KEYS[1]  message hash (sms:msg:<id>)
-- KEYS[2]  dead index (the only index a DEAD message is in)
-- KEYS[3]  its idempotency key (sms:idem:<key>); ignored when ARGV[2] is 0
-- ARGV[1]  message id
-- ARGV[2]  1 when the message has an idempotency key, else 0
-- Returns {purged, released}: 1/0 each. Nothing is deleted unless the message is DEAD now (an
-- operator may have queued it again since it was listed); a key that names another message is kept.

if redis.call('HGET', KEYS[1], 'state') ~= 'DEAD' then
  return {0, 0}
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
local released = 0
if ARGV[2] == '1' and redis.call('GET', KEYS[3]) == ARGV[1] then
  released = redis.call('DEL', KEYS[3])
end
return {1, released}
