-- rlock leave: a waiter gives up its place in line (--wait ran out, a signal, an error, or a
-- claim that failed).
--
-- KEYS: lock, meta, line, line_expiry, wake, fence, watchers
-- ARGV: ticket, handoff_ttl_ms, head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms, promotion_slack_ms
-- Returns 1. A hand-off made for this ticket and not claimed is passed on to the next waiter
-- (or the lock freed), and the waiters moved up to first or second place are told to
-- re-check (line.lua): a waiter that is gone leaves nothing the others wait on. A hand-off
-- passed on to nobody frees the lock: the watchers are woken (watchers.lua).
-- All or nothing (guard.lua): the keys are read and the permissions asked before the first write.
-- @include guard.lua
-- @include handoff_grant.lua
-- @include watchers.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local ticket = ARGV[1]
local timing = line_timing(ARGV, 3)
local current = redis.call('GET', KEYS[1])
local queued = redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
local ours = current and string.sub(current, 1, 8) == 'handoff:' and
             string.sub(current, -(#ticket + 1)) == ':' .. ticket
if queued == 0 and not ours then return 1 end
local needs = line_commands(KEYS[3], KEYS[4], KEYS[5], ticket)
local watching = 0
if ours then
  local failed = fence_refused(KEYS[6])
  if failed then return failed end
  watching = redis.call('ZCARD', KEYS[7])
  needs = let_go_commands(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], 1, ARGV[2])
  if watching > 0 then
    for _, command in ipairs(watchers_commands(KEYS[7], KEYS[5])) do table.insert(needs, command) end
  end
end
local denied = refused(needs)
if denied then return denied end
local before = line_first(KEYS[3])
line_remove(KEYS[3], KEYS[4], KEYS[5], ticket)
if ours then
  -- let_go prunes the line and tells whoever moved up itself.
  local look = let_go_look(KEYS[3], KEYS[4], now, ticket)
  local freed = let_go(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], look, before, now_parts, now, ARGV[2],
                       timing)
  if freed and watching > 0 then watchers_notify(KEYS[7], KEYS[5], now, 'free', timing.promotion_slack) end
else
  line_prune(KEYS[3], KEYS[4], now, nil)
  line_promote(KEYS[3], KEYS[4], KEYS[5], before, now, timing, ticket)
end
return 1
