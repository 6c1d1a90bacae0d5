-- Claim QUEUED messages for one worker under a lease, and return the claimed records whole, so that
-- the worker need not read them again. Claiming twice under the same lease (a claim whose reply was
-- lost, run again) claims nothing new and returns the same messages: a message already SENDING under
-- this lease is ours, whatever happened to the first reply.
--
-- KEYS[1..n]  the message hashes, in the order of the ids ARGV[4..3+n]
-- KEYS[n+1..] named indexes, each named by ARGV[3 + i] for KEYS[i] (i > n):
--               "SENDING"        the sending index (score: when the lease runs out)
--               "QUEUED:<p>"     the queued index of priority p, one each for high, normal, bulk
-- ARGV[1]     lease token
-- ARGV[2]     lease length in seconds, from Redis TIME
-- ARGV[3]     n, the number of messages
-- ARGV[4..3+n]     the message ids
-- ARGV[4+n..]      the names of KEYS[n+1..], in order
-- Returns, in the order asked, for each message that is SENDING under this lease now, its whole hash
-- as HGETALL gives it (a flat field, value list). A message moved here leaves its queued index (by its
-- stored priority; an unknown priority reads "normal", as Priority.read says) and joins the sending
-- index with lease, lease_until (Redis TIME + ARGV[2]), inflight 0 and updated_at set.

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = ARGV[1]
local lease_until = string.format('%.6f', now + tonumber(ARGV[2]))
local n = tonumber(ARGV[3])

local named = {}
for i = n + 1, #KEYS do
  named[ARGV[3 + i]] = KEYS[i]
end
local sending = named['SENDING']

local claimed = {}
local moved_from = {}
for name, index in pairs(named) do
  if string.sub(name, 1, 7) == 'QUEUED:' then moved_from[index] = {} end
end
local to_sending = {}
for i = 1, n do
  local key, id = KEYS[i], ARGV[3 + i]
  local seen = redis.call('HMGET', key, 'state', 'priority', 'lease')
  local state = seen[1]
  if state == 'QUEUED' then
    local priority = seen[2] or 'normal'
    table.insert(moved_from[named['QUEUED:' .. priority] or named['QUEUED:normal']], id)
    table.insert(to_sending, lease_until)
    table.insert(to_sending, id)
    redis.call('HSET', key, 'state', 'SENDING', 'lease', lease, 'lease_until', lease_until, 'inflight', '0',
               'updated_at', string.format('%.6f', now))
    redis.call('PERSIST', key)
    table.insert(claimed, redis.call('HGETALL', key))
  elseif state == 'SENDING' and seen[3] == lease then
    table.insert(claimed, redis.call('HGETALL', key))
  end
end
-- the indexes, once for the batch (their order within the script makes no difference to anyone)
for index, ids in pairs(moved_from) do
  if #ids > 0 then redis.call('ZREM', index, unpack(ids)) end
end
if #to_sending > 0 then
  redis.call('ZADD', sending, unpack(to_sending))
end
return claimed
