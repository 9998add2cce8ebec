-- next_fence(fence_key, now_parts): the next fencing token of a lock, spliced by CMake into
-- the scripts that hand out fences (acquire, and release and force_release through
-- handoff_grant.lua) where they say '-- @include next_fence.lua'.
--
-- The counter never expires: fences must keep increasing across the lock's whole life, not
-- just while it is held. When INCR returns 1 (a new lock name, or a counter lost because the
-- server lost its data: a restart without persistence), the counter restarts from the server
-- clock in microseconds, so that fences keep rising across such a loss (as long as the
-- server's clock does not step back).
-- The INCR fails on a key of another type, or one that holds no integer: callers ask
-- fence_refused(fence_key) before their first write, so that such a key fails the script
-- before it changed anything.
local function next_fence(fence_key, now_parts)
  local fence = redis.call('INCR', fence_key)
  if fence == 1 then
    fence = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
    redis.call('SET', fence_key, string.format('%d', fence))
  end
  return fence
end

-- An error reply when next_fence(fence_key) would fail, else nil. Reads only.
local function fence_refused(fence_key)
  local counter = redis.call('GET', fence_key) -- WRONGTYPE on a key of another type
  if counter and not string.match(counter, '^%-?%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') then
    return redis.error_reply('WRONGTYPE the fence counter ' .. fence_key .. ' holds no integer rlock can increment')
  end
  return nil
end
