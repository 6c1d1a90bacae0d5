-- A request to LightSMS has its reply: its member in the arrival window ends now (core/arrival_window.py).
--
-- KEYS[1]  the window
-- ARGV[1]  the request's member
-- Returns 1 when the member was there (it ends now), 0 when it had already gone (its bound passed).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%.0f', now), ARGV[1])
