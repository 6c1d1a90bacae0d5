-- Store new messages and index them, all in one atomic call, unless a recipient that must be screened
-- is opted out (then nothing is stored) or a message's idempotency key names a message that still exists.
--
-- KEYS[1]        the opt-out set (sms:optout)
-- KEYS[2..]      three per message, in order: its hash (sms:msg:<id>), its idempotency key
--                (sms:idem:<key>; ignored when it has none), the index of its first state
-- ARGV[1]        n, the number of messages
-- ARGV[2]        the message hash prefix (sms:msg:), to look up the message an existing key names
-- ARGV[3]        s, the number of field, value pairs every message has alike (a send_many's text,
--                sender, times...): sent once for the call, not once per recipient
-- ARGV[4..3+2s]  those s pairs
-- ARGV[4+2s..]   per message: id, idempotency key TTL in seconds (0 = no idempotency key), score in the
--                index, phone, screen ("1": refuse the whole call if the phone is opted out), m (the
--                number of its own field, value pairs), then those m pairs (written after the shared
--                ones: a field in both takes its own value)
-- Returns {-1, i} when message i (1-based) is to be screened and its phone is opted out: nothing stored.
-- Otherwise {1} followed, for each message not stored because its key names a message that still
-- exists, by its position i and that existing id (a repeat within the same call names the first
-- one's id); every message not listed was stored under its own id. (A reply that lists only the
-- exceptions: a send_many to thousands would otherwise get every id it sent back.)
--
-- A key whose message is gone (purged, expired, deleted by hand) is free: answering with that id
-- would store and send nothing, a silent loss. The key is pointed at the new message instead.
-- (The named message's hash is read by a name built here, as pop_due.lua does: one Redis, no cluster.)
-- Every check (the opt-out list) is made before the first write, so a refusal stores nothing.

local n = tonumber(ARGV[1])
local prefix = ARGV[2]
local s = tonumber(ARGV[3])

local heads = {}
local screened = {}
local screened_at = {}
local a = 4 + 2 * s
for i = 1, n do
  local m = tonumber(ARGV[a + 5])
  heads[i] = a
  if ARGV[a + 4] == '1' then
    table.insert(screened, ARGV[a + 3])
    table.insert(screened_at, i)
  end
  a = a + 6 + 2 * m
end

local CHUNK = 1000
for first = 1, #screened, CHUNK do
  local last = math.min(first + CHUNK - 1, #screened)
  local flags = redis.call('SMISMEMBER', KEYS[1], unpack(screened, first, last))
  for j = 1, #flags do
    if flags[j] == 1 then
      return {-1, screened_at[first + j - 1]}
    end
  end
end

local result = {1}
local pending = {}  -- index key -> {score, id, ...} still to be added
local pending_order = {}
local function flush(index)
  local members = pending[index]
  if members and #members > 0 then
    redis.call('ZADD', index, unpack(members))
    pending[index] = {}
  end
end

for i = 1, n do
  local h = heads[i]
  local id, ttl, score = ARGV[h], tonumber(ARGV[h + 1]), ARGV[h + 2]
  local m = tonumber(ARGV[h + 5])
  local hash, idem, index = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local existing = false
  if ttl > 0 then
    existing = redis.call('GET', idem)
    if existing and redis.call('EXISTS', prefix .. existing) == 0 then
      existing = false
    end
    if not existing then
      redis.call('SET', idem, id, 'EX', ttl)
    end
  end
  if existing then
    table.insert(result, i)
    table.insert(result, existing)
  else
    local fields = {unpack(ARGV, 4, 3 + 2 * s)}
    for j = h + 6, h + 5 + 2 * m do
      fields[#fields + 1] = ARGV[j]
    end
    redis.call('HSET', hash, unpack(fields))
    if not pending[index] then
      pending[index] = {}
      table.insert(pending_order, index)
    end
    local members = pending[index]
    table.insert(members, score)
    table.insert(members, id)
    if #members >= 2 * CHUNK then
      flush(index)
    end
  end
end
for _, index in ipairs(pending_order) do
  flush(index)
end
return result
