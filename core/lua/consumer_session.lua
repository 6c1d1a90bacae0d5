-- A Redis-broker consumer's held list (consumers/redis_consumer.py) given back to the end of its
-- queue that consumers take from, so that it comes next:
--   "start": when the consumer starts or reconnects; then it is marked alive and registered;
--   "stop":  when it stops; then it is unmarked and unregistered;
--   "sweep": by any consumer, for another one whose alive mark lapsed (it died holding it).
-- KEYS: held list, queue list, alive mark, registry set.
-- ARGV: mode, the consumer's id, the alive mark's TTL in ms ("start").
-- Returns how many events were given back, or -1 when "sweep" found the consumer alive.
local held, queue, alive, registry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, id = ARGV[1], ARGV[2]

if mode == "sweep" and redis.call("EXISTS", alive) == 1 then
  return -1
end
-- The held list's newest is on its left: moved first, it ends furthest from the consuming end.
local given = 0
while redis.call("LMOVE", held, queue, "LEFT", "RIGHT") do
  given = given + 1
end
if mode == "start" then
  redis.call("SET", alive, "1", "PX", ARGV[3])
  redis.call("SADD", registry, id)
else
  redis.call("DEL", alive)
  redis.call("SREM", registry, id)
end
return given
