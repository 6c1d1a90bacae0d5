--! include reserve_slot.lua
-- Take a slot of the global rate limit (see reserve_slot.lua).
--
-- KEYS[1]  the limiter key for one LightSMS login
-- ARGV[1]  emission interval in microseconds (1e6 / requests per second)
-- ARGV[2]  the longest wait, in microseconds, a caller accepts
-- Returns "<wait>:<now>": what reserve_slot returns (the microseconds to wait for the reserved slot, 0:
-- go now, or minus the distance to the next free one, nothing reserved), and the Redis TIME it counts
-- from, in microseconds: the caller places the slot on its own clock with it (worker/slot_clock.py).
-- Counting the wait from when the reply was read would make the request late by however long the
-- reply took to be read.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = reserve_slot(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
return slot_reply(wait, now)
