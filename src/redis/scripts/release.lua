-- rlock release: compare-and-delete on the token, with hand-off to the first waiter.
--
-- KEYS: lock, meta, waiters, wake, fence
-- ARGV: token, min_hold_ms, handoff_ttl_ms
-- Returns {1, kept_ms, keeper_pid, host} released (kept_ms > 0: shortened to honour
-- --min-hold, measured on the server's clock from acquisition; the first waiter is told to
-- re-check), {0} free, {-1} taken.
--
-- When live waiters are queued, the lock is not deleted but set to a one-time hand-off value
-- that is pushed to the wake list: the waiter blocked longest in BLPOP gets it and claims the
-- lock with it (acquire.lua). If that waiter died meanwhile, the hand-off value simply expires
-- after handoff_ttl_ms, and the next waiter's fallback re-check takes the free lock.
-- The value is 'handoff:FENCE:NOW_MS': the next holder's fence, taken here, and the server
-- time of the hand-off. With both, the woken waiter knows its fence and how long the value
-- keeps the lock for it, so it can start its job while its claim is still on the way.
-- @include next_fence.lua
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return {-1} end
  return {0}
end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
-- Reads that fail on a foreign key's type come before any write (no rollback in scripts).
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local waiters = redis.call('ZCARD', KEYS[3])
local meta = redis.call('HMGET', KEYS[2], 'token', 'keeper_pid', 'host', 'acquired_ms')
local keeper_pid = 0
local host = ''
if meta[1] == ARGV[1] then
  keeper_pid = tonumber(meta[2] or '0')
  host = meta[3] or ''
  local min_hold = tonumber(ARGV[2])
  if min_hold > 0 and meta[4] then
    local remaining = tonumber(meta[4]) + min_hold - now
    if remaining > 0 then
      redis.call('PEXPIRE', KEYS[1], remaining)
      redis.call('PEXPIRE', KEYS[2], remaining)
      if waiters > 0 then
        -- The first waiter sleeps until the old lease's end: wake it to re-check and sleep
        -- only until the shortened one's.
        redis.call('DEL', KEYS[4])
        redis.call('RPUSH', KEYS[4], 'recheck')
        redis.call('PEXPIRE', KEYS[4], remaining)
      end
      return {1, remaining, keeper_pid, host}
    end
  end
end
if waiters > 0 then
  -- The first write, so that a fence key of another type fails before anything changed.
  local fence = next_fence(KEYS[5], now_parts)
  redis.call('DEL', KEYS[2])
  local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now)
  redis.call('SET', KEYS[1], grant, 'PX', ARGV[3])
  redis.call('DEL', KEYS[4])
  redis.call('RPUSH', KEYS[4], grant)
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
else
  redis.call('DEL', KEYS[2])
  redis.call('DEL', KEYS[1])
end
return {1, 0, keeper_pid, host}
