-- A Redis-broker consumer's registration and held list (consumers/redis_consumer.py). The registry
-- scores each consumer by its last renewal, in ms of Redis TIME:
--   "renew": the consumer is alive: its score is now;
--   "start": when it starts or reconnects: its held list given back, then renewed;
--   "stop":  when it stops: its held list given back, then unregistered;
--   "sweep": by any consumer, for another one: unless renewed within the dead-after, its held list is
--            given back (it died holding it). It stays registered until it is long dead, so that an
--            event it took in its last moments, after a sweep, is found by the next one.
-- A held list goes back to the end of its queue that consumers take from, so that it comes next.
-- KEYS: held list, queue list, registry.   ARGV: mode, the consumer's id, the dead-after in ms.
-- Returns how many events were given back, or -1 when "sweep" found the consumer alive.
local held, queue, registry = KEYS[1], KEYS[2], KEYS[3]
local mode, id, dead_after = ARGV[1], ARGV[2], tonumber(ARGV[3])
local FORGET_AFTER = 10  -- dead-afters

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode == "renew" then
  redis.call("ZADD", registry, now, id)
  return 0
end
local score = tonumber(redis.call("ZSCORE", registry, id))
if mode == "sweep" and score and now - score < dead_after then
  return -1
end
-- The held list's newest is on its left: moved first, it ends furthest from the consuming end.
local given = 0
while redis.call("LMOVE", held, queue, "LEFT", "RIGHT") do
  given = given + 1
end
if mode == "start" then
  redis.call("ZADD", registry, now, id)
elseif mode == "stop" or not score or now - score > FORGET_AFTER * dead_after then
  redis.call("ZREM", registry, id)
end
return given
