-- The arrival window of a login (core/arrival_window.py), as the scripts that use it share it:
-- window_enter.lua and window_end.lua on their own, claim.lua (a place with the claim's slot and
-- mark) and transition.lua (a place ended with the send's outcome), one round trip fewer each.
--
-- The window is a sorted set: one member per request that has not been out for a second; its score,
-- in microseconds of Redis TIME, is when the request ended, or, while it is under way, the latest it
-- can end. A request counts from before it leaves until a second after its reply came: LightSMS dates
-- it between the two, so the last of any second's arrivals to enter counted all the others.

-- Past what a place needs, the key's life is lengthened by this much more at once, so that most
-- calls find it long enough and only read it.
local WINDOW_TTL_SLACK_MS = 30000

-- The key lives at least `ms` more: never shortened, since another process's places may need it longer.
local function window_lives_at_least(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms + WINDOW_TTL_SLACK_MS)
  end
end

-- 0 when the window has room for one more request now (after forgetting the places that ended more
-- than `width` µs ago); else the µs until a place may free. When every place is still under way,
-- none frees sooner than `width` from now (its end is not known yet).
local function window_room(key, limit, width, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - width))
  if redis.call('ZCARD', key) < limit then
    return 0
  end
  local first = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  if first > now then
    return width
  end
  return math.max(1, first + width - now)
end

-- The place `member`, under way until `bound` µs from now at the latest.
local function window_add(key, member, bound, width, now)
  redis.call('ZADD', key, string.format('%.0f', now + bound), member)
  window_lives_at_least(key, math.ceil((bound + width) / 1000))
end

-- The place `member` ends `from_now` µs from now (0: its reply came); 1 when it was there, 0 when it
-- had already gone (nothing written).
local function window_set_end(key, member, from_now, now)
  local ends = now + from_now
  local there = redis.call('ZADD', key, 'XX', 'CH', string.format('%.0f', ends), member)
  -- A second past its end, the place counts for nothing: the key lives at least that long. A reply's
  -- end needs nothing more: its request ended by its bound, a second past which the key lives since
  -- the place was added (a later end, an outcome recorded late, is only more careful than needed).
  if there == 1 and from_now > 0 then
    window_lives_at_least(key, math.ceil(from_now / 1000) + 1001)
  end
  return there
end
