-- hand_off(lock_key, meta_key, wake_key, fence_key, now_parts, now, ttl_ms): passes a lock to
-- the first waiter, for release and force_release, spliced in by CMake where they say
-- '-- @include handoff_grant.lua'.
--
-- The lock key is not deleted but set to a one-time hand-off value, 'handoff:FENCE:NOW_MS',
-- pushed to the wake list: the waiter blocked longest in BLPOP gets it and claims the lock
-- with it (acquire.lua). FENCE is the next holder's fence, taken here; NOW_MS the server time
-- of the hand-off. With both, the woken waiter knows its fence and how long the value keeps
-- the lock for it, so it can start its job while its claim is still on the way. If that
-- waiter died meanwhile, the value expires after ttl_ms and the next waiter's fallback
-- re-check takes the free lock.
-- The INCR of next_fence is the first write: callers check the fence key (fence_refused)
-- before writing anything.
-- @include next_fence.lua
local function hand_off(lock_key, meta_key, wake_key, fence_key, now_parts, now, ttl_ms)
  local fence = next_fence(fence_key, now_parts)
  local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now)
  redis.call('DEL', meta_key)
  redis.call('SET', lock_key, grant, 'PX', ttl_ms)
  redis.call('DEL', wake_key)
  redis.call('RPUSH', wake_key, grant)
  redis.call('PEXPIRE', wake_key, ttl_ms)
end
