-- Move one message from an allowed state to a new one, atomically, keeping the state indexes in step.
--
-- KEYS[1]  message hash (sms:msg:<id>)
-- KEYS[2]  queued index, high   KEYS[3] queued index, normal   KEYS[4] queued index, bulk
-- KEYS[5]  sending index        KEYS[6] due index              KEYS[7] dead index
-- KEYS[8]  unknown index
-- ARGV[1]  message id
-- ARGV[2]  allowed current states, comma-separated
-- ARGV[3]  new state
-- ARGV[4]  score in the new state's index (ignored when the state has none)
-- ARGV[5]  lease token the message must hold when it is SENDING or UNKNOWN ("" = no check): an
--          UNKNOWN record keeps the lease of the attempt whose reply was lost
-- ARGV[6]  TTL in seconds for the hash (0 = keep it)
-- ARGV[7]  now, unix seconds (updated_at)
-- ARGV[8]  a field that must hold ARGV[9] for the move ("" = no condition; a missing field reads "0")
-- ARGV[9]  its required value
-- ARGV[10] when the message is SENDING: the move needs its lease to have run out by this unix time
--          ("" = no check); the sweeper's guard against a worker that renewed the lease meanwhile
-- ARGV[11..] field, value pairs to set with the move
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
if (current == 'SENDING' or current == 'UNKNOWN') and ARGV[5] ~= ''
    and redis.call('HGET', KEYS[1], 'lease') ~= ARGV[5] then
  return {0, current}
end
if ARGV[8] ~= '' and (redis.call('HGET', KEYS[1], ARGV[8]) or '0') ~= ARGV[9] then
  return {0, current}
end
if ARGV[10] ~= '' and current == 'SENDING'
    and tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > tonumber(ARGV[10]) then
  return {0, current}
end

local queued = {high = KEYS[2], normal = KEYS[3], bulk = KEYS[4]}
local index_of = {SENDING = KEYS[5], SCHEDULED = KEYS[6], DEFERRED = KEYS[6], DEAD = KEYS[7], UNKNOWN = KEYS[8],
                  QUEUED = queued[redis.call('HGET', KEYS[1], 'priority') or 'normal'] or KEYS[3]}
for i = 2, 8 do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
local index = index_of[ARGV[3]]
if index then
  redis.call('ZADD', index, ARGV[4], ARGV[1])
end

redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updated_at', ARGV[7])
for i = 11, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return {1, current}
