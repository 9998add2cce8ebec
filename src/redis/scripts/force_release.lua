-- rlock force-release: break a lock whoever holds it (an operator's action).
--
-- KEYS: lock, meta, waiters, wake, fence
-- ARGV: handoff_ttl_ms
-- Returns the holder block (holder_block.lua) describing who was evicted ({0, …} if it was
-- free). Like release.lua, hands the lock to the first waiter if any are queued.
-- All or nothing (guard.lua): reads and permission checks before the first write.
-- @include guard.lua
-- @include handoff_grant.lua
-- @include holder_block.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
local queued = redis.call('ZCARD', KEYS[3])
local block = holder_block(KEYS[1], KEYS[2], current, waiters, now)
if not current then
  return block
end
local prune = {'zremrangebyscore', KEYS[3], '-inf', now}
if waiters > 0 then
  local failed = fence_refused(KEYS[5])
  if failed then return failed end
end
local needs = let_go_commands(KEYS[1], KEYS[2], KEYS[4], KEYS[5], waiters, ARGV[1])
if queued > waiters then table.insert(needs, prune) end
local denied = refused(needs)
if denied then return denied end
if queued > waiters then redis.call(unpack(prune)) end
let_go(KEYS[1], KEYS[2], KEYS[4], KEYS[5], waiters, now_parts, now, ARGV[1])
return block
