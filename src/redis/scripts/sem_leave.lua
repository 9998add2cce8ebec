-- rlock leave for a waiter of a semaphore or a shared lock: gives up its place in line.
--
-- KEYS: lock, permits, fence, line, line_expiry, wake, limit, watchers
-- ARGV: ticket, handoff_ttl_ms, head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms,
--       promotion_slack_ms
-- Returns 1. Takes the ticket and its list out of the line. A reservation a release made for
-- this ticket (a member of permits) is passed on to the next live waiter, or dropped; a mutex
-- hand-off value in the lock key made for it (a shared lock's last reader handed over) is
-- passed on as leave.lua would. The waiters moved up are told to re-check (line.lua).
-- All or nothing (guard.lua).
-- @include guard.lua
-- @include permits.lua
-- @include handoff_grant.lua
-- @include watchers.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lock_key, permits, fence_key, line, expiry, wake, limit_key, watchers = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
                                                                              KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ticket = ARGV[1]
local handoff_ttl = tonumber(ARGV[2])
local timing = line_timing(ARGV, 3)
local current = redis.call('GET', lock_key)
local live = permits_read(permits, now)
local queued = redis.call('ZCARD', line) + redis.call('ZCARD', expiry)
local function made_for_us(value)
  return string.sub(value, 1, 8) == 'handoff:' and string.sub(value, -(#ticket + 1)) == ':' .. ticket
end
local reservation = nil
for _, permit in ipairs(live) do
  if made_for_us(permit[1]) then reservation = permit[1] end
end
local handed_lock = current and made_for_us(current)
if queued == 0 and not reservation and not handed_lock then return 1 end
local needs = line_commands(line, expiry, wake, ticket)
local watching = redis.call('ZCARD', watchers)
if reservation or handed_lock then
  local failed = fence_refused(fence_key)
  if failed then return failed end
  for _, command in ipairs(permits_commands(lock_key, permits, limit_key, '')) do table.insert(needs, command) end
  for _, command in ipairs(let_go_commands(lock_key, lock_key .. ':meta', fence_key, line, expiry, wake, 1,
                                           ARGV[2])) do
    table.insert(needs, command)
  end
  if watching > 0 then
    for _, command in ipairs(watchers_commands(watchers, wake)) do table.insert(needs, command) end
  end
end
local denied = refused(needs)
if denied then return denied end
local before = line_first(line)
line_remove(line, expiry, wake, ticket)
if handed_lock then
  local look = let_go_look(line, expiry, now, ticket)
  local freed = let_go(lock_key, lock_key .. ':meta', fence_key, line, expiry, wake, look, before, now_parts, now,
                       ARGV[2], timing)
  if freed and watching > 0 then watchers_notify(watchers, wake, now, 'free', timing.promotion_slack) end
  return 1
end
line_prune(line, expiry, now, nil)
if reservation then
  redis.call('ZREM', permits, reservation)
  local first = redis.call('ZRANGE', line, 0, 0)[1]
  if first then
    local fence = next_fence(fence_key, now_parts)
    local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now) .. ':' .. first
    redis.call('ZADD', permits, now + handoff_ttl, grant)
    line_remove(line, expiry, wake, first)
    local key = line_wake_key(wake, first)
    redis.call('RPUSH', key, grant)
    redis.call('PEXPIRE', key, handoff_ttl)
  end
  local _, limit = permits_kind(current)
  local keep = 0
  if redis.call('ZCARD', line) > 0 then keep = redis.call('PTTL', line) end
  local freed = permits_settle(lock_key, permits, limit_key, limit or 1, now, keep,
                               not current or limit ~= nil)
  if freed and watching > 0 then watchers_notify(watchers, wake, now, 'free', timing.promotion_slack) end
end
line_promote(line, expiry, wake, before, now, timing, ticket)
return 1
