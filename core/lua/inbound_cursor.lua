-- Move the incoming poller's cursor, only while the caller still holds the poll lock
-- (worker/inbound.py): a poller whose lock ran out mid-poll must not move a cursor another poller
-- owns now. The poller's health stamp moves with it.
--
-- KEYS[1]  the poll lock (sms:lock:poll:incoming)
-- KEYS[2]  the cursor (sms:inbound:cursor): unix time (UTC) up to which incoming.php was read
-- KEYS[3]  the pollers' health hash (sms:pollers)
-- ARGV[1]  the caller's lock token
-- ARGV[2]  the new cursor, unix seconds
-- ARGV[3]  the health field (incoming_ok_at)
-- ARGV[4]  the health value, unix seconds
-- Returns 1 when moved, 0 when the lock is not the caller's (nothing written).

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 1
