-- rlock release: compare-and-delete on the token, with hand-off to the first waiter.
--
-- KEYS: lock, meta, line, line_expiry, wake, fence, watchers
-- ARGV: token, min_hold_ms, handoff_ttl_ms,
--       head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms, promotion_slack_ms, audit
-- Returns {1, kept_ms, keeper_pid, host} released (kept_ms > 0: shortened to honour
-- --min-hold, measured on the server's clock from acquisition; the first waiter is told to
-- re-check), {0} free, {-1} taken. keeper_pid is 0 and host empty when the meta hash does
-- not say them (not this token's, or not numbers).
--
-- When live waiters are in line (line.lua), the lock is handed to the first of them
-- (handoff_grant.lua) instead of deleted. A release that frees the lock wakes its watchers
-- (watchers.lua) with 'free'; one that shortens it for --min-hold, with 'recheck'.
-- All or nothing (guard.lua): the keys are read (and so type-checked) and the permissions
-- asked before the first write. A meta hash that is not this token's describes nothing.
-- audit is '1' to append the release to the audit log (audit.lua), 'released' or 'handed-off'
-- (to the first waiter, whose claim appends 'claimed'); else ''. A token that no longer holds
-- the lock appends nothing: a release sent again after its answer was lost finds the lock
-- gone too, and the log must not tell of a loss that did not happen.
-- @include guard.lua
-- @include meta.lua
-- @include handoff_grant.lua
-- @include watchers.lua
-- @include audit.lua
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return {-1} end
  return {0}
end
-- Uncontended, a release reads the lock key, the line's and the watchers' sizes and the meta
-- hash, and deletes two keys with one DEL: the server's clock and the line are read only
-- when something needs them.
local queued = redis.call('ZCARD', KEYS[3])
local watching = redis.call('ZCARD', KEYS[7])
local meta = meta_read(KEYS[2], current)
local auditing = ARGV[9] == '1'
local min_hold = tonumber(ARGV[2])
local now_parts = nil
local now = nil
if queued > 0 or watching > 0 or auditing or (meta and min_hold > 0) then
  now_parts = redis.call('TIME')
  now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
end
local timing = line_timing(ARGV, 4)

-- The audit entry of this release: who held the lock, as its meta hash said (nothing when it
-- did not describe this token).
local function audit_released(wake, event, held_by, at)
  local m = held_by or {}
  audit_append(audit_key(wake), event, ARGV[1], m.host, m.pid, m.user, m.fence, audit_held_ms(m.acquired_ms, at), nil)
end
local keeper_pid = 0
local host = ''
local remaining = 0
if meta then
  keeper_pid = meta_int(meta.keeper_pid) or 0
  if keeper_pid < 0 then keeper_pid = 0 end
  host = meta.host or ''
  local acquired_ms = meta_int(meta.acquired_ms)
  if min_hold > 0 and acquired_ms then
    -- At most min_hold: an acquired_ms in the future is not to be believed.
    remaining = math.min(acquired_ms + min_hold - now, min_hold)
  end
end
local needs
local look = nil
if remaining > 0 then
  needs = {{'pexpire', KEYS[2], remaining}, {'pexpire', KEYS[1], remaining}}
  if queued > 0 then
    for _, command in ipairs(line_commands(KEYS[3], KEYS[4], KEYS[5], '')) do table.insert(needs, command) end
  end
else
  if queued > 0 then look = let_go_look(KEYS[3], KEYS[4], now, nil) end
  local waiters = look and #look.live or 0
  if waiters > 0 then
    local failed = fence_refused(KEYS[6])
    if failed then return failed end
  end
  needs = let_go_commands(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], waiters, ARGV[3])
end
if watching > 0 then
  for _, command in ipairs(watchers_commands(KEYS[7], KEYS[5])) do table.insert(needs, command) end
end
if auditing then
  for _, command in ipairs(audit_commands(audit_key(KEYS[5]))) do table.insert(needs, command) end
end
local denied = refused(needs)
if denied then return denied end
if remaining > 0 then
  redis.call('PEXPIRE', KEYS[2], remaining)
  redis.call('PEXPIRE', KEYS[1], remaining)
  if queued > 0 then
    -- The first waiter sleeps until the old lease's end: wake it to re-check and sleep
    -- only until the shortened one's.
    local before = line_first(KEYS[3])
    line_prune(KEYS[3], KEYS[4], now, nil)
    local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if first then
      local key = line_wake_key(KEYS[5], first)
      redis.call('DEL', key)
      redis.call('RPUSH', key, 'recheck')
      redis.call('PEXPIRE', key, remaining)
    end
    line_promote(KEYS[3], KEYS[4], KEYS[5], before, now, timing, first)
  end
  if watching > 0 then watchers_notify(KEYS[7], KEYS[5], now, 'recheck', timing.promotion_slack) end
  if auditing then audit_released(KEYS[5], 'released', meta, now) end
  return {1, remaining, keeper_pid, host}
end
local freed = let_go(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], look, nil, now_parts, now, ARGV[3], timing)
if freed and watching > 0 then watchers_notify(KEYS[7], KEYS[5], now, 'free', timing.promotion_slack) end
if auditing then
  local event = 'handed-off'
  if freed then event = 'released' end
  audit_released(KEYS[5], event, meta, now)
end
return {1, 0, keeper_pid, host}
