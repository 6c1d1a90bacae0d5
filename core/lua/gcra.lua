-- GCRA rate limiter on the Redis clock, shared by every worker process on every host.
-- Each caller reserves the next free slot, if it is near enough, and waits for it: slots stay
-- exactly one interval apart under load, so a late caller never shifts everyone after it.
--
-- KEYS[1]  the limiter key for one LightSMS login (the next free slot, microseconds of Redis TIME)
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  the longest wait, in microseconds, a caller accepts
-- Returns the microseconds to wait for the reserved slot (0: go now), or, when the next free slot
-- is further away than ARGV[2], minus that distance and nothing is reserved.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])

local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then
  slot = now
end
local wait = slot - now
if wait > max_wait then
  return -wait
end
local next_slot = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_slot), 'PX', math.ceil((next_slot - now) / 1000) + 1000)
return wait
