-- The arrival window's key lives at least `ms` more (window_enter.lua, window_end.lua): never
-- shortened, since another process's places may need it longer.
local function window_lives_at_least(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end
