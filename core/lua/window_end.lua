--! include window.lua
-- A place in the arrival window of a login, given a new end (window.lua): its request's reply came
-- (it ends now), or the place is kept for a request about to be written (it may be under way until
-- its bound again, counted from now).
--
-- KEYS[1]  the window
-- ARGV[1]  the place's member
-- ARGV[2]  microseconds from now to its new end: 0 when the reply came, the bound when renewed
-- Returns 1 when the member was there (and now ends then), 0 when it had already gone.

local t = redis.call('TIME')
return window_set_end(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(t[1]) * 1000000 + tonumber(t[2]))
