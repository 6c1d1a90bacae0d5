--! include reserve_slot.lua
-- Take a slot of the global rate limit (see reserve_slot.lua).
--
-- KEYS[1]  the limiter key for one LightSMS login
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  the longest wait, in microseconds, a caller accepts
-- Returns what reserve_slot returns: the microseconds to wait for the reserved slot (0: go now), or
-- minus the distance to the next free one (nothing reserved).

local t = redis.call('TIME')
return reserve_slot(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(t[1]) * 1000000 + tonumber(t[2]))
