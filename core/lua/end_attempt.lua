-- After an attempt whose request provably never reached LightSMS (connection refused, HTTP 429 or
-- 503, a rejected signature), or that was interrupted before its request started: the in-flight
-- mark of each message still SENDING under this lease, and marked by this very attempt, is
-- cleared before the worker waits to try again (or lets the interrupt through). A worker lost
-- during that wait leaves messages the sweeper queues again, not messages it must hold UNKNOWN
-- (they were never sent). The next attempt marks them again (begin_send.lua) with a later mark of
-- its own: a copy of this call that reaches Redis late (a retried command, a packet held up in the
-- network) finds that mark, not its own, and clears nothing while that request is in flight; nor
-- can a late copy of this attempt's begin_send put its mark back (begin_send.lua refuses a mark
-- that is not later than the one held).
--
-- KEYS[1..n]  the message hashes
-- ARGV[1]     the lease token the messages must hold
-- ARGV[2]     the attempt's mark ("0" for a mark the claim made)
-- Returns the number of marks cleared.

local cleared = 0
for i = 1, #KEYS do
  local seen = redis.call('HMGET', KEYS[i], 'state', 'lease', 'inflight', 'mark')
  if seen[1] == 'SENDING' and seen[2] == ARGV[1] and seen[3] == '1' and seen[4] == ARGV[2] then
    redis.call('HSET', KEYS[i], 'inflight', '0')
    cleared = cleared + 1
  end
end
return cleared
