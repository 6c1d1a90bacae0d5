-- GCRA rate limiting on the Redis clock, shared by every worker process on every host: included by
-- the scripts that take a slot (gcra.lua; begin_send.lua and claim.lua, which take it with the
-- in-flight mark).
-- Each caller reserves the next free slot, if it is near enough, and waits for it: slots stay
-- exactly one interval apart under load, so a late caller never shifts everyone after it.
--
-- key       the limiter key for one LightSMS login (the next free slot, microseconds of Redis TIME)
-- interval  emission interval in microseconds (1e6 / requests per second)
-- max_wait  the longest wait, in microseconds, a caller accepts
-- now       Redis TIME in microseconds
-- Returns the microseconds to wait for the reserved slot (0: go now), or, when the next free slot
-- is further away than max_wait, minus that distance and nothing is reserved.
local function reserve_slot(key, interval, max_wait, now)
  local slot = tonumber(redis.call('GET', key) or '0')
  if slot < now then
    slot = now
  end
  local wait = slot - now
  if wait > max_wait then
    return -wait
  end
  local next_slot = slot + interval
  redis.call('SET', key, string.format('%.0f', next_slot), 'PX', math.ceil((next_slot - now) / 1000) + 1000)
  return wait
end

-- A slot as the scripts answer it: "<the wait in µs>:<Redis TIME in µs>", the wait counted from that
-- TIME, so that a caller can place the slot on its own clock from when Redis read it, not from when
-- the reply was read (worker/slot_clock.py; the limiter's own slots); read by core.store.slot_reply.
local function slot_reply(wait, now)
  return string.format('%.0f:%.0f', wait, now)
end
