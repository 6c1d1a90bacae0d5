-- Take a message out of the status-due index without moving it: nothing asks about its status again.
--
-- KEYS[1]     message hash (sms:msg:<id>)
-- KEYS[2]     the status-due index (sms:idx:status_due)
-- ARGV[1]     message id
-- ARGV[2]     the polled states, comma-separated (SENT, PARTLY_DELIVERED)
-- ARGV[3]     now, unix seconds (updated_at)
-- ARGV[4..]   field, value pairs: why its status is no longer asked (none: only a stale entry goes)
-- Returns 1 when a polled message was given up on (it got the fields), else 0.
--
-- A message still in a polled state leaves the index only when fields are given: the poller gives up
-- on it (its deadline passed, it has no id_sms). An entry whose message is gone or in another state
-- is stale and always leaves. The state is read here, not trusted from an earlier read, and a hash
-- that expired meanwhile is not written again (HSET would create it, without its TTL).

local current = redis.call('HGET', KEYS[1], 'state')
local polled = false
if current then
  for state in string.gmatch(ARGV[2], '[^,]+') do
    if state == current then polled = true end
  end
end
if not polled then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if #ARGV < 4 then
  return 0
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
