-- Renew the lease of messages a live worker is still working on (its lease keeper calls this every
-- third of a lease), so that a lease can be short: a worker killed mid-batch stops renewing, and its
-- messages are the sweeper's within one lease.
--
-- KEYS[1..n]  the message hashes, in the order of ARGV[3..]
-- KEYS[n+1]   sending index
-- ARGV[1]     lease token the messages must hold
-- ARGV[2]     lease length in seconds, from Redis TIME
-- ARGV[3..]   the message ids
-- Returns how many were renewed: those still SENDING under this lease whose lease has not run out
-- (one that did is not ours any more, as begin_send.lua also holds: the sweeper's to settle).

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_until = string.format('%.6f', now + tonumber(ARGV[2]))
local sending = KEYS[#KEYS]
local renewed = 0
for i = 1, #KEYS - 1 do
  if redis.call('HGET', KEYS[i], 'state') == 'SENDING' and redis.call('HGET', KEYS[i], 'lease') == ARGV[1]
      and tonumber(redis.call('HGET', KEYS[i], 'lease_until') or '0') >= now then
    redis.call('HSET', KEYS[i], 'lease_until', lease_until)
    redis.call('ZADD', sending, lease_until, ARGV[i + 2])
    renewed = renewed + 1
  end
end
return renewed
