-- How release and force_release let go of a lock, spliced in by CMake where they say
-- '-- @include handoff_grant.lua': let_go() hands it to the first waiter (hand_off) when live
-- waiters are queued, else deletes it; let_go_commands() lists what it may run, for refused().
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
-- hand_off(lock_key, meta_key, wake_key, fence_key, now_parts, now, ttl_ms): passes a lock to
-- the first waiter.
local function hand_off(lock_key, meta_key, wake_key, fence_key, now_parts, now, ttl_ms)
  local fence = next_fence(fence_key, now_parts)
  local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now)
  redis.call('DEL', meta_key)
  redis.call('SET', lock_key, grant, 'PX', ttl_ms)
  redis.call('DEL', wake_key)
  redis.call('RPUSH', wake_key, grant)
  redis.call('PEXPIRE', wake_key, ttl_ms)
end

-- let_go_commands(lock_key, meta_key, wake_key, fence_key, waiters, ttl_ms): the commands
-- let_go may run, as refused() takes them; asked after fence_refused(fence_key) when waiters > 0.
local function let_go_commands(lock_key, meta_key, wake_key, fence_key, waiters, ttl_ms)
  if waiters == 0 then return {{'del', meta_key}, {'del', lock_key}} end
  return {{'incr', fence_key}, {'set', fence_key, '1'}, {'del', meta_key}, {'set', lock_key, 'handoff', 'PX', ttl_ms},
          {'del', wake_key}, {'rpush', wake_key, 'handoff'}, {'pexpire', wake_key, ttl_ms}}
end

-- let_go(lock_key, meta_key, wake_key, fence_key, waiters, now_parts, now, ttl_ms): hands the
-- lock to the first waiter when `waiters` live ones are queued, else deletes it and its meta hash.
local function let_go(lock_key, meta_key, wake_key, fence_key, waiters, now_parts, now, ttl_ms)
  if waiters > 0 then
    hand_off(lock_key, meta_key, wake_key, fence_key, now_parts, now, ttl_ms)
  else
    redis.call('DEL', meta_key)
    redis.call('DEL', lock_key)
  end
end
