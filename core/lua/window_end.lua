--! include window_ttl.lua
-- A place in the arrival window of a login, given a new end (core/arrival_window.py): its request's
-- reply came (it ends now), or the place is kept for a request about to be written (it may be under
-- way until its bound again, counted from now).
--
-- KEYS[1]  the window
-- ARGV[1]  the place's member
-- ARGV[2]  microseconds from now to its new end: 0 when the reply came, the bound when renewed
-- Returns 1 when the member was there (and now ends then), 0 when it had already gone.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[2])
local there = redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%.0f', ends), ARGV[1])
if there == 1 then
  -- a second past its end, the place counts for nothing: the key lives at least that long
  window_lives_at_least(KEYS[1], math.ceil((ends - now) / 1000) + 1001)
end
return there
