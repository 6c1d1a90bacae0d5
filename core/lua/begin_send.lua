--! include reserve_slot.lua
-- Renew the lease of each message that is still ours. Just before the HTTP request it also marks
-- them in flight, so that from here on no sweeper may queue them again (they become UNKNOWN if their
-- worker is lost); the lease keeper calls it without, every third of a lease, while the batch is in
-- hand, so that a lease can be short and a killed worker's messages are the sweeper's within one.
-- Before a request it can also take the request's slot of the global rate limit in the same call
-- (one round trip, not two, on the hot path): only a slot at most ARGV[5] away, and only when a
-- message is ours.
--
-- KEYS[1..n]  the message hashes, in the order of ARGV[7..]
-- KEYS[n+1]   sending index
-- KEYS[n+2]   the limiter key, only when ARGV[4] is not ""
-- ARGV[1]     lease token the messages must hold
-- ARGV[2]     lease length in seconds, renewed from Redis TIME
-- ARGV[3]     "0": only renew; else mark them in flight (the request starts), this attempt's mark
--             written beside (see end_attempt.lua). Marks grow with each attempt (twenty digits,
--             core.store.attempt_mark): a message holding a later mark than this is not ours to
--             mark, since this call is a late copy of one made before that later attempt's (the
--             same mark again is: a call retried after its reply was lost).
-- ARGV[4]     the limiter's emission interval in microseconds; "" = take no slot
-- ARGV[5]     the longest wait for that slot, in microseconds
-- ARGV[6]     with the in-flight mark: a lease with more than this many seconds left is kept as it is
--             ("" = always renewed); the caller passes what its request may take, and some
-- ARGV[7..]   the message ids
-- Returns {wait, id, ...}: as slot_reply writes it, the µs to wait for the slot taken (0 without
-- one), and the ids that may be sent (SENDING under this lease, and the lease has not run out;
-- the others were taken from us, or are about to be: the sweeper acts on a lease that ran out);
-- or {minus the µs to the next free slot, as slot_reply writes it} when a slot was asked and none
-- is near enough: then nothing was renewed, marked or reserved.
-- A lease with enough left for the whole request (ARGV[6]) is not renewed by the in-flight mark (it
-- was taken moments ago, and the lease keeper renews it): one write fewer on the hot path.

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #ARGV - 6
local keep_if_left = tonumber(ARGV[6])
local sending = KEYS[n + 1]
local length = tonumber(ARGV[2])
local ours = {}
local fresh = {}
for i = 1, n do
  local seen = redis.call('HMGET', KEYS[i], 'state', 'lease', 'lease_until', 'mark')
  local lease_until = tonumber(seen[3] or '0')
  local later_mark = ARGV[3] ~= '0' and seen[4] and seen[4] > ARGV[3]
  -- a lease that ran out is not ours any more, even before the sweeper has seen it
  if seen[1] == 'SENDING' and seen[2] == ARGV[1] and lease_until >= now and not later_mark then
    table.insert(ours, i)
    fresh[i] = ARGV[3] ~= '0' and keep_if_left ~= nil and lease_until - now > keep_if_left
  end
end
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
if #ours > 0 and ARGV[4] ~= '' then
  wait = reserve_slot(KEYS[n + 2], tonumber(ARGV[4]), tonumber(ARGV[5]), now_us)
  if wait < 0 then
    return {slot_reply(wait, now_us)}
  end
end

local until_text = string.format('%.6f', now + length)
local result = {slot_reply(wait, now_us)}
local renewed = {}
for _, i in ipairs(ours) do
  local id = ARGV[i + 6]
  if fresh[i] then
    redis.call('HSET', KEYS[i], 'inflight', '1', 'mark', ARGV[3])
  else
    if ARGV[3] ~= '0' then
      redis.call('HSET', KEYS[i], 'lease_until', until_text, 'inflight', '1', 'mark', ARGV[3])
    else
      redis.call('HSET', KEYS[i], 'lease_until', until_text)
    end
    table.insert(renewed, until_text)
    table.insert(renewed, id)
  end
  table.insert(result, id)
end
if #renewed > 0 then
  redis.call('ZADD', sending, unpack(renewed))
end
return result
