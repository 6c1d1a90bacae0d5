-- Just before the HTTP request: confirm each message is still ours and mark it in flight, so that
-- from here on no sweeper may queue it again (it becomes UNKNOWN if its worker is lost).
--
-- KEYS[1..n]  the message hashes, in the order of ARGV[3..]
-- KEYS[n+1]   sending index
-- ARGV[1]     lease token the messages must hold
-- ARGV[2]     lease length in seconds, renewed from Redis TIME
-- ARGV[3..]   the message ids
-- Returns the ids that may be sent: SENDING under this lease, and the lease has not run out; the
-- others were taken from us (or are about to be: the sweeper acts on a lease that ran out).

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_until = now + tonumber(ARGV[2])
local sending = KEYS[#KEYS]
local ours = {}
for i = 1, #KEYS - 1 do
  local id = ARGV[i + 2]
  -- a lease that ran out is not ours any more, even before the sweeper has seen it
  if redis.call('HGET', KEYS[i], 'state') == 'SENDING' and redis.call('HGET', KEYS[i], 'lease') == ARGV[1]
      and tonumber(redis.call('HGET', KEYS[i], 'lease_until') or '0') >= now then
    redis.call('HSET', KEYS[i], 'inflight', '1', 'lease_until', string.format('%.6f', lease_until))
    redis.call('ZADD', sending, string.format('%.6f', lease_until), id)
    table.insert(ours, id)
  end
end
return ours
