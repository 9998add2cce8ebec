-- rlock force-release: break a lock whoever holds it (an operator's action).
--
-- KEYS: lock, meta, waiters, wake, fence
-- ARGV: handoff_ttl_ms
-- Returns the holder block of inspect.lua describing who was evicted ({0, …} if it was free).
-- Like release.lua, hands the lock to the first waiter if any are queued, with the same
-- 'handoff:FENCE:NOW_MS' value.
-- @include next_fence.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local waiters = redis.call('ZCARD', KEYS[3])
if not current then
  return {0, -2, waiters, now, 0, 0}
end
local meta = redis.call('HMGET', KEYS[2], 'token', 'host', 'pid', 'user', 'command', 'acquired_ms',
                        'ttl_ms', 'fence', 'renewals', 'keeper_pid')
local has_meta = 0
if meta[1] == current then has_meta = 1 end
local handoff = 0
if string.sub(current, 1, 8) == 'handoff:' then handoff = 1 end
local pttl = redis.call('PTTL', KEYS[1])
if waiters > 0 then
  -- The first write, so that a fence key of another type fails before anything changed.
  local fence = next_fence(KEYS[5], now_parts)
  redis.call('DEL', KEYS[2])
  local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now)
  redis.call('SET', KEYS[1], grant, 'PX', ARGV[1])
  redis.call('DEL', KEYS[4])
  redis.call('RPUSH', KEYS[4], grant)
  redis.call('PEXPIRE', KEYS[4], ARGV[1])
else
  redis.call('DEL', KEYS[2])
  redis.call('DEL', KEYS[1])
end
return {1, pttl, waiters, now, has_meta, handoff,
        meta[2], meta[3], meta[4], meta[5], meta[6], meta[7], meta[8], meta[9], meta[10]}
