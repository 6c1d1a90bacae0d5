--! include window.lua
-- Let one request to LightSMS into the arrival window of a login, if it has room (window.lua).
--
-- KEYS[1]  the window
-- ARGV[1]  the most requests that may arrive at LightSMS in any one second
-- ARGV[2]  this request's member (unique)
-- ARGV[3]  the longest a request can be under way, in microseconds (its score until it leaves)
-- ARGV[4]  the window's length in microseconds (a second, and a little slack)
-- Returns 0 when the request entered; otherwise the microseconds until a place may free (nothing
-- written).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local width = tonumber(ARGV[4])
local wait = window_room(KEYS[1], tonumber(ARGV[1]), width, now)
if wait == 0 then
  window_add(KEYS[1], ARGV[2], tonumber(ARGV[3]), width, now)
  return 0
end
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0  -- run again (redis-py retries once when a reply is lost): the place is already this request's
end
return wait
