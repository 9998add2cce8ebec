-- rlock force-release: break a lock whoever holds it (an operator's action).
--
-- KEYS: lock, meta, line, line_expiry, wake, fence
-- ARGV: handoff_ttl_ms, head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms, promotion_slack_ms
-- Returns the holder block (holder_block.lua) describing who was evicted ({0, …} if it was
-- free). Like release.lua, hands the lock to the first live waiter in line if there is one.
-- All or nothing (guard.lua): reads and permission checks before the first write.
-- @include guard.lua
-- @include handoff_grant.lua
-- @include holder_block.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local timing = line_timing(ARGV, 2)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')
redis.call('ZCARD', KEYS[3])
local block = holder_block(KEYS[1], KEYS[2], current, waiters, now)
if not current then
  return block
end
if waiters > 0 then
  local failed = fence_refused(KEYS[6])
  if failed then return failed end
end
local denied = refused(let_go_commands(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], waiters, ARGV[1]))
if denied then return denied end
let_go(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], line_first(KEYS[3]), now_parts, now, ARGV[1], timing)
return block
