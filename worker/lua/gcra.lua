-- GCRA rate limiter on the Redis clock, shared by every worker process on every host.
-- It never reserves a future slot: a caller that is refused asks again after the wait it is told.
--
-- KEYS[1]  the limiter key for one LightSMS login (holds the theoretical arrival time, microseconds)
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  burst tolerance in microseconds (0: requests strictly spaced by the interval)
-- Returns 0 when the request may go now (the slot is taken), else microseconds to wait before asking again.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local allow_at = tat - tolerance
if now < allow_at then
  return math.ceil(allow_at - now)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
