-- How release, force_release and leave let go of a lock, spliced in by CMake where they say
-- '-- @include handoff_grant.lua': let_go() hands it to the first live waiter in line
-- (line.lua) when there is one, else deletes it; let_go_commands() lists what it may run, for
-- refused().
--
-- The lock key is not deleted but set to a one-time hand-off value,
-- 'handoff:FENCE:NOW_MS:TICKET', pushed to that waiter's own wake list; the waiter claims the
-- lock with it (acquire.lua), and leaves the line with the hand-off (it no longer waits).
-- FENCE is the next holder's fence, taken here; NOW_MS the server time of the hand-off. With
-- both, the woken waiter knows its fence and how long the value keeps the lock for it, so it
-- can start its job while its claim is still on the way. TICKET lets the waiter claim it even
-- if the answer to its pop was lost. If that waiter died meanwhile, the value expires after
-- ttl_ms, and the waiters moved up to first and second place, told to re-check at once
-- (line_promote), take the free lock then.
-- The fence counter's write (next_fence) is the first write: callers check the fence key
-- (fence_refused) before writing anything when waiters are in line.
-- @include next_fence.lua
-- @include line.lua

-- let_go_look(line, line_expiry, now, skip): what let_go needs to know of the line, read before
-- the caller's first write: {lapsed = the lapsed tickets, live = the first three live ones in
-- order, top = the first two as they stand}. `skip`: a ticket that is leaving (neither live
-- nor lapsed: the caller removes it). Reads only: two commands.
local function let_go_look(line, line_expiry, now, skip)
  local lapsed = line_lapsed(line_expiry, now, skip)
  local gone = {}
  for _, ticket in ipairs(lapsed) do gone[ticket] = true end
  local top = redis.call('ZRANGE', line, 0, #lapsed + 3)
  local live = {}
  for _, ticket in ipairs(top) do
    if #live < 3 and not gone[ticket] and ticket ~= skip then table.insert(live, ticket) end
  end
  return {lapsed = lapsed, live = live, top = {top[1], top[2]}}
end

-- let_go_commands(lock_key, meta_key, fence_key, line, line_expiry, wake, waiters, ttl_ms): the
-- commands let_go may run, as refused() takes them; asked after fence_refused(fence_key) when
-- waiters > 0.
local function let_go_commands(lock_key, meta_key, fence_key, line, line_expiry, wake, waiters, ttl_ms)
  local commands = {{'del', meta_key}, {'del', lock_key}}
  if waiters > 0 then
    for _, command in ipairs({{'incr', fence_key}, {'set', fence_key, '1'}, {'set', lock_key, 'handoff', 'PX', ttl_ms}}) do
      table.insert(commands, command)
    end
  end
  for _, command in ipairs(line_commands(line, line_expiry, wake, '')) do table.insert(commands, command) end
  return commands
end

-- let_go(lock_key, meta_key, fence_key, line, line_expiry, wake, look, before, now_parts, now,
-- ttl_ms, timing): prunes the lapsed tickets and hands the lock to the first live one, or
-- deletes the lock and its meta hash when none is left; then tells the waiters moved up to
-- first or second place (since `before`, an earlier line_first; else look.top) to re-check.
-- `look` is let_go_look's, or nil when the line is empty. Returns true when it deleted the
-- lock (it is free now: the caller wakes its watchers, watchers.lua).
local function let_go(lock_key, meta_key, fence_key, line, line_expiry, wake, look, before, now_parts, now, ttl_ms,
                      timing)
  if not look then
    -- Nobody in line (the common case): just delete.
    redis.call('DEL', meta_key, lock_key)
    return true
  end
  local first = look.live[1]
  local gone = look.lapsed
  if first then
    local fence = next_fence(fence_key, now_parts)
    local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now) .. ':' .. first
    local key = line_wake_key(wake, first)
    redis.call('DEL', meta_key, key)
    redis.call('SET', lock_key, grant, 'PX', ttl_ms)
    gone = {first}
    for _, ticket in ipairs(look.lapsed) do table.insert(gone, ticket) end
    line_forget(line, line_expiry, gone)
    redis.call('RPUSH', key, grant)
    redis.call('PEXPIRE', key, ttl_ms)
  else
    redis.call('DEL', meta_key, lock_key)
    line_forget(line, line_expiry, gone)
  end
  line_promote(line, line_expiry, wake, before or look.top, now, timing, nil, {look.live[2], look.live[3]})
  return not first
end
