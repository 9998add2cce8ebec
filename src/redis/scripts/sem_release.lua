-- rlock release of a permit (--limit N, --shared): compare-and-remove on the token, with
-- hand-off to the first waiter.
--
-- KEYS: lock, permits, fence, line, line_expiry, wake, limit, watchers
-- ARGV: token, handoff_ttl_ms, head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms,
--       promotion_slack_ms
-- Returns {1, 0, keeper_pid, host} released; {0} when the token holds no live permit (it
-- lapsed, or was released already): nothing changes, so a double release can never give a
-- permit back twice.
--
-- With live waiters in line: a semaphore reserves the freed permit for the first of them (a
-- member 'handoff:FENCE:NOW_MS:TICKET' of permits, pushed to its list, lapsing after
-- handoff_ttl_ms); the last reader of a shared lock hands the whole lock to the first waiter,
-- writer or reader, with a mutex hand-off value in the lock key (handoff_grant.lua's form). A
-- release that leaves no permit and nobody to hand to frees the lock and wakes its watchers.
-- All or nothing (guard.lua): reads and permission checks before the first write.
-- @include guard.lua
-- @include next_fence.lua
-- @include permits.lua
-- @include line.lua
-- @include watchers.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lock_key, permits, fence_key, line, expiry, wake, limit_key, watchers = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
                                                                              KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local token = ARGV[1]
local handoff_ttl = tonumber(ARGV[2])
local timing = line_timing(ARGV, 3)
local live, lapsed = permits_read(permits, now)
local index = permits_find(live, token)
if not index then return {0} end
local current = redis.call('GET', lock_key)
local kind, limit = permits_kind(current)
if not kind then
  -- The lock key went (broken by hand): the limit key still says the kind.
  local stored = redis.call('GET', limit_key)
  if stored == 'shared' then
    limit = 0
  else
    limit = tonumber(stored or '1') or 1
  end
end
local meta_key = permit_meta_key(lock_key, token)
local meta = meta_read(meta_key, token)
local keeper_pid = 0
local host = ''
if meta then
  keeper_pid = meta_int(meta.keeper_pid) or 0
  if keeper_pid < 0 then keeper_pid = 0 end
  host = meta.host or ''
end
local queued = redis.call('ZCARD', line) + redis.call('ZCARD', expiry)
local waiters = 0
local before = {}
if queued > 0 then
  before = line_first(line)
  waiters = redis.call('ZCOUNT', expiry, '(' .. now, '+inf')
end
local watching = redis.call('ZCARD', watchers)
local needs = permits_commands(lock_key, permits, limit_key, token)
if waiters > 0 then
  local failed = fence_refused(fence_key)
  if failed then return failed end
  table.insert(needs, {'incr', fence_key})
  table.insert(needs, {'set', fence_key, '1'})
end
if queued > 0 then
  for _, command in ipairs(line_commands(line, expiry, wake, '')) do table.insert(needs, command) end
end
if watching > 0 then
  for _, command in ipairs(watchers_commands(watchers, wake)) do table.insert(needs, command) end
end
local denied = refused(needs)
if denied then return denied end

redis.call('ZREM', permits, token)
redis.call('DEL', meta_key)
for _, member in ipairs(lapsed) do
  redis.call('ZREM', permits, member)
end
table.remove(live, index)
local handed = false
if waiters > 0 then
  line_prune(line, expiry, now, nil)
  local first = redis.call('ZRANGE', line, 0, 0)[1]
  if first and (limit ~= 0 or #live == 0) then
    local fence = next_fence(fence_key, now_parts)
    local grant = 'handoff:' .. string.format('%d', fence) .. ':' .. string.format('%d', now) .. ':' .. first
    if limit == 0 then
      -- The last reader: the whole lock goes to the first waiter, as a mutex's would.
      redis.call('DEL', permits)
      redis.call('SET', lock_key, grant, 'PX', handoff_ttl)
    else
      redis.call('ZADD', permits, now + handoff_ttl, grant)
    end
    line_remove(line, expiry, wake, first)
    local key = line_wake_key(wake, first)
    redis.call('RPUSH', key, grant)
    redis.call('PEXPIRE', key, handoff_ttl)
    handed = true
  end
  line_promote(line, expiry, wake, before, now, timing, nil)
end
if limit == 0 and handed then
  -- The lock key holds the hand-off now; the limit key lives on while the line does.
  if redis.call('ZCARD', line) == 0 then redis.call('DEL', limit_key) end
  return {1, 0, keeper_pid, host}
end
local keep = 0
if redis.call('ZCARD', line) > 0 then keep = redis.call('PTTL', line) end
local freed = permits_settle(lock_key, permits, limit_key, limit, now, keep, not current or kind ~= nil)
if freed and watching > 0 then watchers_notify(watchers, wake, now, 'free', timing.promotion_slack) end
return {1, 0, keeper_pid, host}
