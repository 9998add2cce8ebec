-- next_fence(fence_key, now_parts): the next fencing token of a lock, spliced by CMake into
-- the scripts that hand out fences (acquire, and release and force_release through
-- handoff_grant.lua) where they say '-- @include next_fence.lua'.

-- The counter as read by this script (false when absent): fence_refused reads it, next_fence
-- uses that reading instead of a second GET and keeps it current after its write.
local fence_seen = {}

local function fence_counter(fence_key)
  local counter = fence_seen[fence_key]
  if counter == nil then
    counter = redis.call('GET', fence_key) -- WRONGTYPE on a key of another type
    fence_seen[fence_key] = counter
  end
  return counter
end

-- fence = max(counter + 1, server TIME in microseconds), on every grant. The counter alone
-- is not enough: replication is asynchronous, so a replica promoted by a failover may have
-- missed the last INCRs (and a restart without persistence loses the counter outright); a
-- plain INCR there would hand out fences that a resource has already seen. The server's
-- clock has moved on since those grants, so the fence still rises (as long as the clocks of
-- the old and new master do not step back by more than the time between grants). The
-- counter part keeps fences strictly increasing when grants come faster than the clock
-- ticks, or when a clock is behind the last fence.
-- The counter never expires: fences must keep increasing across the lock's whole life, not
-- just while it is held.
-- The write fails on a key of another type, or one that holds no integer: callers ask
-- fence_refused(fence_key) before their first write, so that such a key fails the script
-- before it changed anything.
local function next_fence(fence_key, now_parts)
  local clock = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
  local counter = tonumber(fence_counter(fence_key) or '0')
  local fence
  if counter and counter >= clock then
    -- Ahead of the clock: count on (INCR is exact in 64 bits where Lua's numbers are not).
    fence = redis.call('INCR', fence_key)
    fence_seen[fence_key] = nil -- read again if needed: above 2^53 the reply is not exact
  else
    redis.call('SET', fence_key, string.format('%d', clock))
    fence = clock
    fence_seen[fence_key] = string.format('%d', clock)
  end
  return fence
end

-- An error reply when next_fence(fence_key) would fail, else nil. Reads only.
local function fence_refused(fence_key)
  local counter = fence_counter(fence_key)
  -- Digits as INCR reads them: no leading zero, at most 18 (INCR cannot overflow).
  if counter and (not string.match(counter, '^%-?%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') or
                  string.match(counter, '^%-?0.')) then
    return redis.error_reply('WRONGTYPE the fence counter ' .. fence_key .. ' holds no integer rlock can increment')
  end
  return nil
end
