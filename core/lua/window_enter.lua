--! include window_ttl.lua
-- Let one request to LightSMS into the arrival window of a login, if it has room (core/arrival_window.py).
--
-- KEYS[1]  the window (a sorted set: one member per request that has not been out for a second; its score,
--          in microseconds of Redis TIME, is when the request ended, or, while it is under way, the
--          latest it can end)
-- ARGV[1]  the most requests that may arrive at LightSMS in any one second
-- ARGV[2]  this request's member (unique)
-- ARGV[3]  the longest a request can be under way, in microseconds (its score until it leaves)
-- ARGV[4]  the window's length in microseconds (a second, and a little slack)
-- Returns 0 when the request entered; otherwise the microseconds until a place may free (nothing
-- written). A request counts from now, before it leaves, until a second after its reply came:
-- LightSMS dates it between the two, so the last of any second's arrivals to enter counted all the
-- others.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local width = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - width))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  local bound = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + bound), ARGV[2])
  window_lives_at_least(KEYS[1], math.ceil((bound + width) / 1000))
  return 0
end
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0  -- run again (redis-py retries once when a reply is lost): the place is already this request's
end
-- The soonest place to free: the earliest ended one's, a second after it ended. When every place is
-- still under way, none frees sooner than a second from now (its end is not known yet).
local first = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if first > now then
  return width
end
return math.max(1, first + width - now)
