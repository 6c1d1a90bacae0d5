-- Renew the lease of each message that is still ours. Just before the HTTP request it also marks
-- them in flight, so that from here on no sweeper may queue them again (they become UNKNOWN if their
-- worker is lost); the lease keeper calls it without, every third of a lease, while the batch is in
-- hand, so that a lease can be short and a killed worker's messages are the sweeper's within one.
--
-- KEYS[1..n]  the message hashes, in the order of ARGV[4..]
-- KEYS[n+1]   sending index
-- ARGV[1]     lease token the messages must hold
-- ARGV[2]     lease length in seconds, renewed from Redis TIME
-- ARGV[3]     "1": mark them in flight (the request starts); "0": only renew
-- ARGV[4..]   the message ids
-- Returns the ids that may be sent: SENDING under this lease, and the lease has not run out; the
-- others were taken from us (or are about to be: the sweeper acts on a lease that ran out).

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_until = now + tonumber(ARGV[2])
local sending = KEYS[#KEYS]
local ours = {}
local renewed = {}
local until_text = string.format('%.6f', lease_until)
for i = 1, #KEYS - 1 do
  local id = ARGV[i + 3]
  local seen = redis.call('HMGET', KEYS[i], 'state', 'lease', 'lease_until')
  -- a lease that ran out is not ours any more, even before the sweeper has seen it
  if seen[1] == 'SENDING' and seen[2] == ARGV[1] and tonumber(seen[3] or '0') >= now then
    if ARGV[3] == '1' then
      redis.call('HSET', KEYS[i], 'lease_until', until_text, 'inflight', '1')
    else
      redis.call('HSET', KEYS[i], 'lease_until', until_text)
    end
    table.insert(renewed, until_text)
    table.insert(renewed, id)
    table.insert(ours, id)
  end
end
if #renewed > 0 then
  redis.call('ZADD', sending, unpack(renewed))
end
return ours
