-- rlock acquire --limit N / --shared: one atomic attempt to take a permit, or to take or keep
-- a place in the name's waiting line.
--
-- KEYS: lock, permits, fence, line, line_expiry, wake, limit
-- ARGV: token, ttl_ms, host, pid, user, command, ticket, claim, supervised, limit (N, or 0 for
--       a reader of a shared lock), head_slack_ms, runner_slack_ms, far_ttl_ms,
--       max_fallback_ms, promotion_slack_ms
--
-- The permits, their keys and the hand-offs are described in permits.lua. A permit may be
-- taken when
--   - it is ours already (a retry after a lost reply: same lease, same fence);
--   - a release reserved it for this waiter (a member 'handoff:…:TICKET' of permits, or, for a
--     reader, a mutex hand-off value in the lock key);
--   - a semaphore: fewer than N live permits, and fewer live tickets ahead of this one than
--     free permits (so a newcomer never passes a waiter); a reader: the lock key is free or
--     held by readers, and no live ticket is ahead (a reader behind a waiting writer waits,
--     so writers never starve).
-- The name's kind is set by its holders and waiters (the lock key's value, else the limit
-- key while live tickets wait; an rlock mutex holder or waiters without a limit key count as
-- limit 1). Another kind returns {-2, stored} ('3', 'shared' or '1') and changes nothing. A
-- reader and a plain (mutex) acquire are the same kind: readers and writers.
-- Returns {1, fence} when taken; {0, place, <block>} when busy (place as in acquire.lua; the
-- block is permits.lua's for a name held by permits, else holder_block.lua's); {-2, stored}.
-- All or nothing (guard.lua): reads and permission checks first.
-- @include guard.lua
-- @include next_fence.lua
-- @include permits.lua
-- @include holder_block.lua
-- @include line.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lock_key, permits, fence_key, line, expiry, wake, limit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
                                                                      KEYS[6], KEYS[7]
local token = ARGV[1]
local ttl = tonumber(ARGV[2])
local ticket = ARGV[7]
local claim = ARGV[8]
local limit = tonumber(ARGV[10])
local given = limit == 0 and 'shared' or string.format('%d', limit)
local timing = line_timing(ARGV, 11)

local current = redis.call('GET', lock_key)
local live, lapsed = permits_read(permits, now)
local stored = redis.call('GET', limit_key)
local queued = redis.call('ZCARD', line) + redis.call('ZCARD', expiry)
local before = {}
local tickets = 0 -- live tickets, the caller's own included
if queued > 0 then
  before = line_first(line)
  tickets = redis.call('ZCOUNT', expiry, '(' .. now, '+inf')
end
local kind, held_limit = permits_kind(current)
local mutex_meta = nil
if current and not kind then mutex_meta = meta_read(lock_key .. ':meta', current) end

-- The kind stored now, if any holder or waiter sets one.
local stored_kind = nil
if kind then
  stored_kind = kind == 'shared' and 'shared' or string.format('%d', held_limit)
elseif current and (mutex_meta or string.sub(current, 1, 8) == 'handoff:') then
  stored_kind = '1' -- an rlock mutex holder, or a mutex hand-off (a writer's)
elseif tickets > 0 and #live > 0 then
  stored_kind = stored
elseif tickets > 0 and not current then
  stored_kind = stored or '1'
end
if stored_kind and stored_kind ~= given then
  -- Readers and writers are one kind: a writer (mutex) holds or waits.
  local compatible = limit == 0 and stored_kind == '1'
  -- Our own ticket alone in line set nothing that others hold.
  local alone = tickets == 1 and #live == 0 and not current and ticket ~= '' and
                redis.call('ZRANK', line, ticket) ~= false
  if not compatible and not alone then return {-2, stored_kind} end
end

local ours = permits_find(live, token)
-- A reservation made for this waiter.
local reservation = nil
local granted = false
local reserved = nil
if not ours and ticket ~= '' then
  for _, permit in ipairs(live) do
    local member = permit[1]
    if string.sub(member, 1, 8) == 'handoff:' and
       ((claim ~= '' and member == claim) or string.sub(member, -(#ticket + 1)) == ':' .. ticket) then
      reservation = member
    end
  end
  if reservation then
    granted = true
    reserved = meta_int(string.match(reservation, '^handoff:(%d+):'))
  elseif limit == 0 and current and string.sub(current, 1, 8) == 'handoff:' and
         ((claim ~= '' and current == claim) or string.sub(current, -(#ticket + 1)) == ':' .. ticket) then
    granted = true
    reserved = meta_int(string.match(current, '^handoff:(%d+):'))
  end
end

-- A free permit, for someone not ahead of whom too many live tickets wait.
local room = false
if not ours and not granted then
  if limit == 0 then
    room = not current or kind == 'shared'
  else
    room = (not current or kind == 'sem') and #live < limit
  end
end
local needs = {}
if queued > 0 or ticket ~= '' then
  for _, command in ipairs(line_commands(line, expiry, wake, ticket)) do table.insert(needs, command) end
end
for _, command in ipairs(permits_commands(lock_key, permits, limit_key, token)) do table.insert(needs, command) end
if (room or granted) and not reserved then
  local failed = fence_refused(fence_key)
  if failed then return failed end
  table.insert(needs, {'incr', fence_key})
  table.insert(needs, {'set', fence_key, '1'})
end
local denied = refused(needs)
if denied then return denied end

if queued > 0 then line_prune(line, expiry, now, ticket) end
if room and queued > 0 then
  local ahead = redis.call('ZCARD', line)
  if ticket ~= '' then
    local rank = redis.call('ZRANK', line, ticket)
    if rank then ahead = rank end
  end
  if limit == 0 then
    room = ahead == 0
  else
    room = ahead < limit - #live
  end
end
for _, member in ipairs(lapsed) do
  redis.call('ZREM', permits, member)
end

if ours then
  -- A retry after a reply lost on the way back: same lease, same fence.
  local meta_key = permit_meta_key(lock_key, token)
  local meta = meta_read(meta_key, token)
  redis.call('ZADD', permits, now + ttl, token)
  redis.call('PEXPIRE', meta_key, ttl)
  permits_settle(lock_key, permits, limit_key, limit, now, 0, not current or kind ~= nil)
  if ticket ~= '' and queued > 0 then line_remove(line, expiry, wake, ticket) end
  if queued > 0 then line_promote(line, expiry, wake, before, now, timing, ticket) end
  return {1, meta and meta_int(meta.fence) or 0}
end
if room or granted then
  local fence = reserved or next_fence(fence_key, now_parts)
  local meta_key = permit_meta_key(lock_key, token)
  redis.call('DEL', meta_key)
  redis.call('HSET', meta_key, unpack(meta_fields(token, ARGV[3], ARGV[4], ARGV[5], ARGV[6], now, ARGV[2], fence,
                                                  ARGV[9])))
  redis.call('PEXPIRE', meta_key, ttl)
  if reservation then redis.call('ZREM', permits, reservation) end
  redis.call('ZADD', permits, now + ttl, token)
  if ticket ~= '' and queued > 0 then line_remove(line, expiry, wake, ticket) end
  local keep = 0
  if redis.call('ZCARD', line) > 0 then keep = redis.call('PTTL', line) end
  permits_settle(lock_key, permits, limit_key, limit, now, keep,
                 not current or kind ~= nil or (granted and not reservation))
  if queued > 0 then line_promote(line, expiry, wake, before, now, timing, ticket) end
  if limit == 0 and queued > 0 then
    -- Readers cascade: the waiter now first may be a reader that can share with us (a writer
    -- re-checks, finds readers and sleeps on).
    local head = line_first(line)[1]
    if head and head == before[1] then
      -- (A head that moved up was told by line_promote already.)
      local key = line_wake_key(wake, head)
      redis.call('RPUSH', key, 'recheck')
      redis.call('PEXPIRE', key, timing.promotion_slack)
    end
  end
  return {1, fence}
end

-- Busy: the block of who holds it, and our place in line.
local block
if kind then
  block = permits_block(lock_key, live, 0, now, held_limit)
else
  block = holder_block(lock_key, lock_key .. ':meta', current, 0, now)
end
local place = -1
if ticket ~= '' then
  -- The first waiter re-checks when the earliest permit would lapse.
  local pttl = block[2]
  if kind and live[1] then pttl = live[1][2] - now end
  place = line_join(line, expiry, ticket, now, pttl, timing)
  if redis.call('PTTL', limit_key) < timing.far_ttl then
    redis.call('SET', limit_key, given, 'PX', timing.far_ttl)
  end
end
if queued > 0 then line_promote(line, expiry, wake, before, now, timing, ticket) end
block[3] = redis.call('ZCOUNT', expiry, '(' .. now, '+inf')
table.insert(block, 1, place)
table.insert(block, 1, 0)
return block
