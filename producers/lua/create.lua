-- Store a new message and index it, unless its idempotency key already names one.
--
-- KEYS[1]  message hash (sms:msg:<id>)
-- KEYS[2]  idempotency key (sms:idem:<key>); ignored when ARGV[2] is 0
-- KEYS[3]  the index of its first state (queued or due)
-- ARGV[1]  message id
-- ARGV[2]  idempotency key TTL in seconds (0 = the message has no idempotency key)
-- ARGV[3]  score in the index
-- ARGV[4..] field, value pairs of the message
-- Returns {1, id} when stored, {0, existing id} when the key was already used.

if tonumber(ARGV[2]) > 0 then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {0, existing}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {1, ARGV[1]}
