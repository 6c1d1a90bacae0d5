--! include window.lua
-- Move messages, each from an allowed state to a new one, keeping its state index in step: each move
-- atomic on its own (one script call carries many moves, one round trip for a batch).
--
-- The call: ARGV[1] = m, the number of moves; ARGV[2..1+2m] = for each move, how many keys and how
-- many arguments it has; then each move's keys in KEYS, and its arguments in ARGV, one move after
-- the other. Returns a flat list: two values for each move, as described below.
--
-- Counters (optional), kept in step with the moves in the same call: KEYS[k+1] (k being every move's
-- keys) is the counters hash; after the moves' arguments come m counter names, one per move ("" for
-- none), each incremented by 1 when its move is made; then c, and c field, increment pairs added
-- when any move of the call is made, whichever (what a request cost is spent even when one move
-- finds its message changed; a call run again after its reply was lost makes none, and adds nothing).
--
-- Places ended (optional, after the counters, which are then given even if none is counted): KEYS[k+2]
-- is a login's arrival window (window.lua); after the counters' arguments come w, and w members of it
-- whose requests' replies came: each place ends now, whether or not any move is made (the request
-- was made either way; a place already gone stays gone).
--
-- One move's KEYS and ARGV (numbered from 1 within the move):
--
-- KEYS[1]     message hash (sms:msg:<id>)
-- KEYS[2..]   named keys, each named by ARGV[9 + i] for KEYS[i] (so ARGV[11..9+#KEYS] in order):
--               <state>         the index of that state (the store's keys.state_index): one for each
--                               allowed current state and one for the new state; the queued ones are
--                               named "QUEUED:high", "QUEUED:normal", "QUEUED:bulk"
--               "id_sms"        the id_sms map entry (sms:idsms:<id_sms>), passed with a move to SENT
--                               that sets id_sms (or a later move of that message): it is set to the
--                               message id, with the TTL the hash gets
-- ARGV[1]     message id
-- ARGV[2]     allowed current states, comma-separated
-- ARGV[3]     new state
-- ARGV[4]     score in the new state's index (ignored when the state has none)
-- ARGV[5]     lease token the message must hold when it is SENDING or UNKNOWN ("" = no check): an
--             UNKNOWN record keeps the lease of the attempt whose reply was lost
-- ARGV[6]     TTL in seconds for the hash (0 = keep it)
-- ARGV[7]     now, unix seconds (updated_at)
-- ARGV[8]     a field that must hold ARGV[9] for the move ("" = no condition; a missing field reads "0")
-- ARGV[9]     its required value
-- ARGV[10]    when the message is SENDING: the move needs its lease to have run out by this unix time
--             ("" = no check); the sweeper's guard against a worker that renewed the lease meanwhile
-- ARGV[11..9+#KEYS]  the names of KEYS[2..], in order
-- ARGV[10+#KEYS..]   field, value pairs to set with the move
-- Returns {1, previous state} when moved, {0, current state} when not ("" if there is no message).
--
-- The message leaves only its current state's index (a QUEUED one by its stored priority; an unknown
-- priority reads "normal", as Priority.read says) and joins only the new state's one, if it has one.

-- Index changes are gathered and made once per index for the call (one ZREM, one ZADD for a batch
-- of hundreds, not one each); a message moved twice in one call has what is gathered made first.
local removals, additions, touched = {}, {}, {}
local function flush_indexes()
  for index, ids in pairs(removals) do
    redis.call('ZREM', index, unpack(ids))
  end
  for index, members in pairs(additions) do
    redis.call('ZADD', index, unpack(members))
  end
  removals, additions, touched = {}, {}, {}
end
local function gather(into, index, ...)
  local list = into[index]
  if not list then
    list = {}
    into[index] = list
  end
  for _, value in ipairs({...}) do
    list[#list + 1] = value
  end
  if #list >= 2000 then flush_indexes() end  -- well within what unpack may spread
end

-- One HMGET reads what the checks need, one HSET writes the move: fewer commands for Redis to run.
local function move(KEYS, ARGV)
if touched[ARGV[1]] then flush_indexes() end
-- pcall: a key that is not a hash (written over by hand) is no message; an error here would end the
-- call with the earlier moves' index changes still gathered, not made
local seen = redis.pcall('HMGET', KEYS[1], 'state', 'lease', 'lease_until', 'priority', ARGV[8] ~= '' and ARGV[8] or 'state')
local current = not seen.err and seen[1]
if not current then
  return {0, ''}
end

local allowed = false
for state in string.gmatch(ARGV[2], '[^,]+') do
  if state == current then allowed = true end
end
if not allowed then
  return {0, current}
end
if (current == 'SENDING' or current == 'UNKNOWN') and ARGV[5] ~= '' and seen[2] ~= ARGV[5] then
  return {0, current}
end
if ARGV[8] ~= '' and (seen[5] or '0') ~= ARGV[9] then
  return {0, current}
end
if ARGV[10] ~= '' and current == 'SENDING' and tonumber(seen[3] or '0') > tonumber(ARGV[10]) then
  return {0, current}
end

local named = {}
for i = 2, #KEYS do
  named[ARGV[9 + i]] = KEYS[i]
end
local priority = seen[4] or 'normal'
local function index_of(state)
  if state == 'QUEUED' then
    return named['QUEUED:' .. priority] or named['QUEUED:normal']
  end
  return named[state]
end

local from = index_of(current)
if from then
  gather(removals, from, ARGV[1])
end
local to = index_of(ARGV[3])
if to then
  gather(additions, to, ARGV[4], ARGV[1])
end
touched[ARGV[1]] = true

redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updated_at', ARGV[7], unpack(ARGV, 10 + #KEYS, #ARGV))
local ttl = tonumber(ARGV[6])
local id_sms = named['id_sms']
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  if id_sms then redis.call('SET', id_sms, ARGV[1], 'EX', ttl) end
else
  redis.call('PERSIST', KEYS[1])
  if id_sms then redis.call('SET', id_sms, ARGV[1]) end
end
return {1, current}
end

local m = tonumber(ARGV[1])
local results = {}
local k, a = 0, 1 + 2 * m
for i = 1, m do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local outcome = move({unpack(KEYS, k + 1, k + nk)}, {unpack(ARGV, a + 1, a + na)})
  table.insert(results, outcome[1])
  table.insert(results, outcome[2])
  k, a = k + nk, a + na
end
flush_indexes()
if #KEYS > k then
  local counters = KEYS[k + 1]
  local made, order, any_made = {}, {}, false
  for i = 1, m do
    local name = ARGV[a + i]
    if results[2 * i - 1] == 1 then
      any_made = true
      if name ~= '' then
        if not made[name] then
          made[name] = 0
          table.insert(order, name)
        end
        made[name] = made[name] + 1
      end
    end
  end
  for _, name in ipairs(order) do
    redis.call('HINCRBY', counters, name, made[name])
  end
  local c = tonumber(ARGV[a + m + 1])
  if any_made then
    for j = 1, c do
      redis.call('HINCRBY', counters, ARGV[a + m + 2 * j], ARGV[a + m + 2 * j + 1])
    end
  end
  if #KEYS > k + 1 then
    local window, w = KEYS[k + 2], a + m + 2 * c + 2  -- w: where the window's members are counted
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    for j = 1, tonumber(ARGV[w]) do
      window_set_end(window, ARGV[w + j], 0, now)
    end
  end
end
return results
