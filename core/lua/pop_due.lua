-- Move the messages that are due from the due index back to QUEUED, at most a given number.
--
-- KEYS[1]    due index (SCHEDULED and DEFERRED)
-- KEYS[2..]  the queued indexes, each named by ARGV[2 + i] for KEYS[i]: "QUEUED:<priority>", one each
--            for high, normal and bulk
-- ARGV[1]    now, unix seconds
-- ARGV[2]    at most this many messages
-- ARGV[3]    message key prefix ("sms:msg:"): hashes are named from the ids, so this
--            script assumes a single Redis, not a cluster
-- ARGV[4..2+#KEYS]  the names of KEYS[2..], in order
-- Returns a flat list: id, priority, id, priority ... of the messages moved (an unknown priority reads
-- "normal"). An id whose message is gone or no longer waiting (cancelled meanwhile) is dropped.

local queued = {}
for i = 2, #KEYS do
  queued[ARGV[2 + i]] = KEYS[i]
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[3] .. id
  local state = redis.call('HGET', key, 'state')
  if state == 'SCHEDULED' or state == 'DEFERRED' then
    local priority = redis.call('HGET', key, 'priority') or 'normal'
    if not queued['QUEUED:' .. priority] then priority = 'normal' end
    redis.call('HSET', key, 'state', 'QUEUED', 'updated_at', ARGV[1], 'queued_at', ARGV[1])
    redis.call('ZADD', queued['QUEUED:' .. priority], ARGV[1], id)
    table.insert(moved, id)
    table.insert(moved, priority)
  end
end
return moved
