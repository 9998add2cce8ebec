-- holder_block(lock_key, meta_key, current, waiters, now): who holds a lock, as the reply block
-- of the scripts that report it (inspect, force_release, acquire when busy), spliced in by
-- CMake where they say '-- @include holder_block.lua':
--   {held, pttl_ms, waiters, server_now_ms, has_meta, handoff,
--    host, pid, user, command, acquired_ms, ttl_ms, fence, renewals, keeper_pid}
-- `current` is the lock key's value (false when free): then the block is {0, -2, waiters,
-- server_now_ms, 0, 0}. has_meta is 0 when the key is held by another client (redis-py,
-- redsync) that writes no metadata, or when the meta hash does not describe this token;
-- then the block ends after handoff. handoff is 1 while a release is passing the lock to a
-- waiter. The fields go back as stored: the client trusts none of them.
-- Only reads, so callers that write call it first. A meta key of another type is no
-- description of the holder, not an error: who holds the lock is the lock key's to say.
-- A name held by permits (a semaphore, or readers: permits.lua) gets permits.lua's block,
-- which starts with 2 instead of 1.
-- @include meta.lua
-- @include permits.lua
local function holder_block(lock_key, meta_key, current, waiters, now)
  if not current then
    return {0, -2, waiters, now, 0, 0}
  end
  local kind, limit = permits_kind(current)
  if kind then
    local live = permits_read(lock_key .. ':permits', now)
    return permits_block(lock_key, live, waiters, now, limit)
  end
  local handoff = 0
  if string.sub(current, 1, 8) == 'handoff:' then handoff = 1 end
  local pttl = redis.call('PTTL', lock_key)
  local meta = meta_read(meta_key, current)
  if not meta then
    return {1, pttl, waiters, now, 0, handoff}
  end
  return {1, pttl, waiters, now, 1, handoff, meta.host, meta.pid, meta.user, meta.command, meta.acquired_ms,
          meta.ttl_ms, meta.fence, meta.renewals, meta.keeper_pid}
end
