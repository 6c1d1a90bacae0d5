--! include reserve_slot.lua
--! include window.lua
-- Claim QUEUED messages for one worker under a lease, and return the claimed records whole, so that
-- the worker need not read them again; in the same call, the account pause and the opt-out list the
-- worker must heed before sending (one round trip where there were four). Claiming twice under the
-- same lease (a claim whose reply was lost, run again) claims nothing new and returns the same
-- messages: a message already SENDING under this lease is ours, whatever happened to the first reply.
--
-- KEYS[1..n]  the message hashes, in the order of the ids ARGV[4..3+n]
-- KEYS[n+1..] named keys, each named by ARGV[3 + i] for KEYS[i] (i > n):
--               "SENDING"        the sending index (score: when the lease runs out)
--               "QUEUED:<p>"     the queued index of priority p, one each for high, normal, bulk
--               "PAUSE"          (optional) the account pause: while it exists nothing is claimed
--               "OPTOUT"         (optional) the opt-out set, to flag the claimed messages it holds
--               "SLOT"           (optional) the limiter key: take the request's slot of the global rate
--                                limit and mark the messages in flight with the claim (begin_send.lua's
--                                work, one round trip fewer), when a slot is at most ARGV[-1] µs away
--                                and every message is moved here, checked by our producer
--                                (phone_checked), not opted out and not expired (nothing the worker
--                                would stop before sending), and all go in one send.php call
--               "WINDOW"         (optional, with "SLOT") the arrival window (window.lua): the slot is
--                                taken only with a place in it, entered for the request in the same
--                                call; without room, neither is taken nor any message marked
-- ARGV[1]     lease token
-- ARGV[2]     lease length in seconds, from Redis TIME
-- ARGV[3]     n, the number of messages
-- ARGV[4..3+n]     the message ids
-- ARGV[4+n..]      the names of KEYS[n+1..], in order; then, with "SLOT": the limiter's emission
--                  interval and the longest wait for the slot, in microseconds; then, with "WINDOW":
--                  the window's limit, the place's member, its bound and the window's width (µs), as
--                  window_enter.lua takes them
-- Returns {pause, slot} followed, in the order asked, for each message that is SENDING under this lease
-- now, by its id, its opt-out flag ("1": its phone is on the opt-out list and it is not the STOP
-- confirmation, "0" otherwise) and its whole hash as HGETALL gives it (a flat field, value list). A message moved here leaves its
-- queued index (by its stored priority; an unknown priority reads "normal", as Priority.read says)
-- and joins the sending index with lease, lease_until (Redis TIME + ARGV[2]), inflight 0 and
-- updated_at set. pause is "" unless the pause key exists: then it is its value, and nothing new is
-- claimed (what this lease already holds is still returned: a claim run again after its reply was
-- lost gives back what it had taken, paused or not). slot is "" when none was asked or the messages
-- are not all markable; else, as slot_reply writes it, the µs to wait for the slot taken (the
-- messages are marked in flight, inflight 1), or minus the µs to the next free slot when none is
-- near (nothing taken or marked). With "WINDOW", a place is in the window under the member only when
-- the messages were marked. A claim run again (its first reply lost) marks nothing: it takes its
-- first run's in-flight marks (CLAIM_MARK) and place out.
-- (A QUEUED record has no TTL: every move to a state that is not final persists it.)

local n = tonumber(ARGV[3])
local named = {}
for i = n + 1, #KEYS do
  named[ARGV[3 + i]] = KEYS[i]
end
local pause = named['PAUSE'] and redis.call('GET', named['PAUSE']) or false

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = ARGV[1]
local sending = named['SENDING']
local lease_until = string.format('%.6f', now + tonumber(ARGV[2]))
-- what a claim writes, as HSET takes it (inflight, the 8th value, is set to 1 below when marked).
-- The in-flight mark starts again at the least there is (core.store.CLAIM_MARK), whether or not the
-- claim marks them: marks are ordered only within one lease (see begin_send.lua), and one left by
-- an earlier lease, on another host's clock, must not outrank this lease's.
local moved = {'state', 'SENDING', 'lease', lease, 'lease_until', lease_until, 'inflight', '0',
               'mark', '0', 'updated_at', string.format('%.6f', now)}

local claimed = {}  -- {id, record (field -> value), key, moved here} in the order asked
local moved_from = {}
for name, index in pairs(named) do
  if string.sub(name, 1, 7) == 'QUEUED:' then moved_from[index] = {} end
end
local to_sending = {}
local asked = {}
for i = 1, n do
  local key, id = KEYS[i], ARGV[3 + i]
  -- an id asked twice (a task written by hand) is claimed and returned once
  local flat = asked[id] and {} or redis.call('HGETALL', key)
  asked[id] = true
  local record = {}
  for j = 1, #flat, 2 do
    record[flat[j]] = flat[j + 1]
  end
  if record['state'] == 'QUEUED' and not pause then
    local priority = record['priority'] or 'normal'
    table.insert(moved_from[named['QUEUED:' .. priority] or named['QUEUED:normal']], id)
    table.insert(to_sending, lease_until)
    table.insert(to_sending, id)
    table.insert(claimed, {id, record, key, true})
  elseif record['state'] == 'SENDING' and record['lease'] == lease then
    if record['inflight'] == '1' and record['mark'] == '0' then
      -- marked by this claim's first run, whose reply was lost: no request has started (the worker
      -- is still claiming), and this run marks nothing, so the mark goes: a batch that now waits
      -- for its slot or room, unmarked, is queued again if its worker is lost, not held UNKNOWN
      redis.call('HSET', key, 'inflight', '0')
      record['inflight'] = '0'
    end
    table.insert(claimed, {id, record, key, false})
  end
end

-- the opt-out list, once for the batch: the STOP confirmation is the one message it lets through
local flags = {}
local screened, screened_at = {}, {}
for c, entry in ipairs(claimed) do
  flags[c] = '0'
  local record = entry[2]
  if named['OPTOUT'] and record['opt_out_confirmation'] ~= '1' and record['phone'] then
    table.insert(screened, record['phone'])
    table.insert(screened_at, c)
  end
end
local CHUNK = 1000  -- well within what unpack may spread
for first = 1, #screened, CHUNK do
  local last = math.min(first + CHUNK - 1, #screened)
  local listed = redis.call('SMISMEMBER', named['OPTOUT'], unpack(screened, first, last))
  for j = 1, #listed do
    if listed[j] == 1 then flags[screened_at[first + j - 1]] = '1' end
  end
end

-- the slot and the in-flight mark, only for messages the worker would send as they are, in one
-- send.php call (worker/batching.py: the same text, sender and sendingTime, no phone twice; the
-- caller asks only for as many as a call takes): none is marked while another call runs first
local slot = ''
local extra = 3 + #KEYS + 1  -- the first ARGV after the names
local window, member = named['WINDOW'], ARGV[extra + 3]
if named['SLOT'] and #claimed > 0 then
  local markable = true
  local first, phones = claimed[1][2], {}
  for c, entry in ipairs(claimed) do
    local record = entry[2]
    local valid_until = tonumber(record['valid_until'] or '')
    if not entry[4] or flags[c] == '1' or record['phone_checked'] ~= '1' or (valid_until and valid_until <= now)
        or record['text'] ~= first['text'] or record['sender'] ~= first['sender']
        or record['sending_time'] ~= first['sending_time'] or phones[record['phone'] or ''] then
      markable = false
    end
    phones[record['phone'] or ''] = true
  end
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local width = tonumber(ARGV[extra + 5])
  if markable and window and window_room(window, tonumber(ARGV[extra + 2]), width, now_us) > 0 then
    markable = false  -- no room for its request: claimed unmarked, and the send waits for room
  end
  if markable then
    local wait = reserve_slot(named['SLOT'], tonumber(ARGV[extra]), tonumber(ARGV[extra + 1]), now_us)
    slot = slot_reply(wait, now_us)
    if wait >= 0 then
      moved[8] = '1'  -- marked by the claim, with CLAIM_MARK (see end_attempt.lua)
      if window then window_add(window, member, tonumber(ARGV[extra + 4]), width, now_us) end
    end
  end
end
if window and moved[8] ~= '1' then
  redis.call('ZREM', window, member)
end

for _, entry in ipairs(claimed) do
  if entry[4] then
    redis.call('HSET', entry[3], unpack(moved))
    for j = 1, #moved, 2 do
      entry[2][moved[j]] = moved[j + 1]
    end
  end
end

-- the indexes, once for the batch (their order within the script makes no difference to anyone)
for index, ids in pairs(moved_from) do
  if #ids > 0 then redis.call('ZREM', index, unpack(ids)) end
end
if #to_sending > 0 then
  redis.call('ZADD', sending, unpack(to_sending))
end

local result = {pause or '', slot}
for c, entry in ipairs(claimed) do
  local flat = {}
  for field, value in pairs(entry[2]) do
    table.insert(flat, field)
    table.insert(flat, value)
  end
  table.insert(result, entry[1])
  table.insert(result, flags[c])
  table.insert(result, flat)
end
return result
