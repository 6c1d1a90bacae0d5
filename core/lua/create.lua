-- Store a new message and index it, unless its idempotency key names a message that still exists.
--
-- KEYS[1]  message hash (sms:msg:<id>)
-- KEYS[2]  idempotency key (sms:idem:<key>); ignored when ARGV[2] is 0
-- KEYS[3]  the index of its first state (keys.state_index: the queued one of its priority, or due)
-- ARGV[1]  message id
-- ARGV[2]  idempotency key TTL in seconds (0 = the message has no idempotency key)
-- ARGV[3]  score in the index
-- ARGV[4]  the message hash prefix (sms:msg:), to look up the message an existing key names
-- ARGV[5..] field, value pairs of the message
-- Returns {1, id} when stored, {0, existing id} when the key names a message that still exists.
--
-- A key whose message is gone (purged, expired, deleted by hand) is free: answering with that id
-- would store and send nothing, a silent loss. The key is pointed at the new message instead.
-- (The named message's hash is read by a name built here, as pop_due.lua does: one Redis, no cluster.)

if tonumber(ARGV[2]) > 0 then
  local existing = redis.call('GET', KEYS[2])
  if existing and redis.call('EXISTS', ARGV[4] .. existing) == 1 then
    return {0, existing}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {1, ARGV[1]}
