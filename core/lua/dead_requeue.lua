-- One dead record's event back on its queue (consumers/dead_letters.py on a Redis broker): the record
-- leaves the dead list and the event is pushed where producers push, in one step, so that a Redis
-- going away in between neither loses the event nor leaves it twice. Nothing when the record is gone
-- (another requeue or a purge took it).
-- KEYS: the dead list, the queue list.   ARGV: the record as the list holds it, the event's message.
-- Returns 1 when moved, else 0.
if redis.call("LREM", KEYS[1], 1, ARGV[1]) == 1 then
  redis.call("LPUSH", KEYS[2], ARGV[2])
  return 1
end
return 0
