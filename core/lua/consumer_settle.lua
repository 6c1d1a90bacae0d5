-- Settles the one event a Redis-broker consumer holds (consumers/redis_consumer.py): it leaves the
-- held list and, for a retry or a dead record, the new message is pushed where producers push, in
-- the same step. An event no longer held (a sweep gave it back meanwhile: it comes again) publishes
-- nothing. Anything else on the held list is an event whose move's reply was lost: back to the queue.
-- KEYS: held list, queue list[, the list to publish to].
-- ARGV: the raw event[, the message to publish].
-- Returns 1 when the event was still held, else 0.
local held, queue = KEYS[1], KEYS[2]
local removed = redis.call("LREM", held, 1, ARGV[1])
if removed == 1 and KEYS[3] then
  redis.call("LPUSH", KEYS[3], ARGV[2])
end
while redis.call("LMOVE", held, queue, "LEFT", "RIGHT") do end
return removed
