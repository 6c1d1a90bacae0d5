-- Move one message from an allowed state to a new one, atomically, keeping the state indexes in step.
--
-- KEYS[1]  message hash (sms:msg:<id>)
-- KEYS[2]  queued index     KEYS[3] sending index   KEYS[4] due index
-- KEYS[5]  dead index       KEYS[6] unknown index
-- ARGV[1]  message id
-- ARGV[2]  allowed current states, comma-separated
-- ARGV[3]  new state
-- ARGV[4]  score in the new state's index (ignored when the state has none)
-- ARGV[5]  lease token the message must hold when it is SENDING ("" = no check)
-- ARGV[6]  TTL in seconds for the hash (0 = keep it)
-- ARGV[7]  now, unix seconds (updated_at)
-- ARGV[8..] field, value pairs to set with the move
-- Returns {1, previous state} when moved, {0, current state} when not ("" if there is no message).

local current = redis.call('HGET', KEYS[1], 'state')
if not current then
  return {0, ''}
end

local allowed = false
for state in string.gmatch(ARGV[2], '[^,]+') do
  if state == current then allowed = true end
end
if not allowed then
  return {0, current}
end
if current == 'SENDING' and ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'lease') ~= ARGV[5] then
  return {0, current}
end

local index_of = {QUEUED = KEYS[2], SENDING = KEYS[3], SCHEDULED = KEYS[4], DEFERRED = KEYS[4],
                  DEAD = KEYS[5], UNKNOWN = KEYS[6]}
for i = 2, 6 do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
local index = index_of[ARGV[3]]
if index then
  redis.call('ZADD', index, ARGV[4], ARGV[1])
end

redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updated_at', ARGV[7])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return {1, current}
