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
-- KEYS[2+3n..]   (optional) w broker lists, and after the messages' ARGV: w, then w payloads: the
--                send tasks of these messages as the broker client would LPUSH them (the store is the
--                broker's Redis): pushed in the same call when every message was stored, so a record
--                is never without its task nor a task ahead of its record, in one round trip (and one
--                fsync under appendfsync always). When some were repeats, nothing is pushed (the tasks
--                name every message of the call: thousands of ids no worker would find).
-- Returns {-1, i} when message i (1-based) is to be screened and its phone is opted out: nothing stored.
-- Otherwise {status} followed, for each message not stored because its key names a message that still
-- exists, by its position i and that existing id (a repeat within the same call names the first
-- one's id); every message not listed was stored under its own id. (A reply that lists only the
-- exceptions: a send_many to thousands would otherwise get every id it sent back.) status is 1, or
-- 2 when tasks were given and not pushed although a message was stored (some were repeats, or a
-- list could not take its task): the caller publishes them another way.
--
-- The same call run again (redis-py retries once when a reply is lost; the ids are new for each
-- call, so a message hash or a key naming its own id means exactly that) writes and pushes nothing
-- again: the first run's records may already be claimed and sent, and its tasks are queued. It
-- answers as the first run did.
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

-- Run before? A first run stored its first message without a key; one with a key, if its key names
-- it now. A key that names another message was a repeat then: the next message tells.
local rerun = false
for i = 1, n do
  local h = heads[i]
  if tonumber(ARGV[h + 1]) == 0 then
    rerun = redis.call('EXISTS', KEYS[3 * i - 1]) == 1
    break
  end
  local named = redis.call('GET', KEYS[3 * i])
  if not named or named == ARGV[h] then
    rerun = named == ARGV[h]
    break
  end
end

local CHUNK = 1000
if not rerun then
  for first = 1, #screened, CHUNK do
    local last = math.min(first + CHUNK - 1, #screened)
    local flags = redis.call('SMISMEMBER', KEYS[1], unpack(screened, first, last))
    for j = 1, #flags do
      if flags[j] == 1 then
        return {-1, screened_at[first + j - 1]}
      end
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

local stored, again = 0, 0  -- stored now; stored by a first run of this same call
for i = 1, n do
  local h = heads[i]
  local id, ttl, score = ARGV[h], tonumber(ARGV[h + 1]), ARGV[h + 2]
  local m = tonumber(ARGV[h + 5])
  local hash, idem, index = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local existing = false
  local first_run = false  -- stored by the first run of this same call
  if ttl > 0 then
    existing = redis.call('GET', idem)
    if existing == id then
      existing, first_run = false, true
    elseif existing and redis.call('EXISTS', prefix .. existing) == 0 then
      existing = false
    end
    if not existing and not first_run then
      redis.call('SET', idem, id, 'EX', ttl)
    end
  elseif rerun then
    first_run = true
  end
  if existing then
    table.insert(result, i)
    table.insert(result, existing)
  elseif first_run then
    again = again + 1
  else
    local fields = {unpack(ARGV, 4, 3 + 2 * s)}
    for j = h + 6, h + 5 + 2 * m do
      fields[#fields + 1] = ARGV[j]
    end
    redis.call('HSET', hash, unpack(fields))
    stored = stored + 1
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

local writes = tonumber(ARGV[a] or '0')
if writes > 0 and again > 0 then
  -- answered as the first run would have: it pushed only when it stored every message, and a list
  -- that is not one now could not take its task then
  if again < n then
    result[1] = 2
  else
    for j = 1, writes do
      local kind = redis.call('TYPE', KEYS[1 + 3 * n + j])['ok']
      if kind ~= 'list' and kind ~= 'none' then result[1] = 2 end
    end
  end
elseif writes > 0 and stored > 0 then
  if stored < n then
    result[1] = 2
  else
    for j = 1, writes do
      -- pcall: the records are written and a script is not rolled back; a list that cannot take the
      -- task (not a list: written over by hand) is reported, for the caller to publish another way
      local pushed = redis.pcall('LPUSH', KEYS[1 + 3 * n + j], ARGV[a + j])
      if type(pushed) == 'table' and pushed.err then result[1] = 2 end
    end
  end
end
return result
