-- A Redis-broker consumer's registration and held list (consumers/redis_consumer.py). The registry
-- scores each consumer by the deadline of its last renewal: Redis TIME in ms plus its own dead-after,
-- so that each is judged by its own setting whatever the sweeper's.
--   "renew": the consumer is alive: its deadline is now + its dead-after;
--   "start": when it starts or reconnects, and when it sweeps (then it holds nothing): its held list
--            given back (a take whose reply was lost may have left one there), then renewed;
--   "stop":  when it stops: its held list given back, and its deadline passed (not removed: a take
--            still on its way on a connection it gave up on may land there, and a sweep finds it);
--   "sweep": by any consumer, for another one past its deadline: its held list is given back (it died
--            holding it). It stays registered until long past its deadline, so that an event it took
--            in its last moments, after a sweep, is found by the next one.
-- A held list goes back to the end of its queue that consumers take from, so that it comes next.
-- KEYS: held list, queue list, registry.
-- ARGV: mode, the consumer's id, the caller's dead-after in ms.
-- Returns how many events were given back, or -1 when "sweep" found the consumer alive.
local held, queue, registry = KEYS[1], KEYS[2], KEYS[3]
local mode, id, dead_after = ARGV[1], ARGV[2], tonumber(ARGV[3])
local FORGET_AFTER_MS = math.max(10 * dead_after, 300000)  -- past the deadline

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode == "renew" then
  redis.call("ZADD", registry, now + dead_after, id)
  return 0
end
local deadline = tonumber(redis.call("ZSCORE", registry, id))
if mode == "sweep" and deadline and now < deadline then
  return -1
end
-- The held list's newest is on its left: moved first, it ends furthest from the consuming end.
local given = 0
while redis.call("LMOVE", held, queue, "LEFT", "RIGHT") do
  given = given + 1
end
if mode == "start" then
  redis.call("ZADD", registry, now + dead_after, id)
elseif mode == "stop" then
  redis.call("ZADD", registry, now - 1, id)
elseif not deadline or now - deadline > FORGET_AFTER_MS then
  redis.call("ZREM", registry, id)
end
return given
