-- rlock acquire: one atomic attempt to take a lock, or to take or keep a place in its line.
--
-- KEYS: lock, meta, fence, line, line_expiry, wake
-- ARGV: token, ttl_ms, host, pid, user, command, ticket, claim, supervised,
--       head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms, promotion_slack_ms, audit
--
-- The lock key is a plain string holding the token with a PX TTL, so that other clients
-- (redis-py Lock, redsync) that SET NX the same key exclude us and we exclude them. It may be
-- taken when it is absent and no live waiter is ahead of this ticket in the line (line.lua),
-- or when it holds a hand-off value that a release made for this waiter: `claim`, the value
-- it popped from its own wake list, or one naming its ticket (when the pop's answer was lost).
-- That is how a release passes the lock to the longest-waiting client without a newcomer or
-- the releaser itself slipping in between.
-- Fences come from next_fence.lua, or from the hand-off value being claimed.
-- supervised is '1' when exec or a keeper will hold the lock: renew.lua then never shortens it.
-- Returns {1, fence} when taken; {-2, limit} when a semaphore holds the name; otherwise
-- {0, place, <holder block>} (see holder_block.lua),
-- place being the ticket's place in line (0: first) or -1 without a ticket. The block's
-- waiters count is the live tickets.
-- All or nothing (guard.lua): the reads that type-check the keys and the permission checks
-- come first; when taking, the meta hash is written whole with its TTL before the lock key.
-- audit is '1' to append the acquisition ('acquired', or 'claimed' for a hand-off) to the
-- audit log (audit.lua), else ''. A retry that finds the lock ours already appends nothing.
-- @include guard.lua
-- @include next_fence.lua
-- @include meta.lua
-- @include holder_block.lua
-- @include line.lua
-- @include audit.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
-- A semaphore's permits hold the name (permits.lua): another kind, refused with its limit
-- (sem_acquire.lua's {-2, stored}). Readers ('shared') are a writer's to wait for: busy.
if current and string.match(current, '^sem:%d+$') then return {-2, string.sub(current, 5)} end
local ticket = ARGV[7]
local claim = ARGV[8]
local timing = line_timing(ARGV, 10)

-- A hand-off value made for this waiter: 'handoff:FENCE:NOW_MS:TICKET'.
local granted = false
if current and string.sub(current, 1, 8) == 'handoff:' then
  granted = (claim ~= '' and current == claim) or
            (ticket ~= '' and string.sub(current, -(#ticket + 1)) == ':' .. ticket)
end
local ours = current == ARGV[1]
local taking = ours or granted or not current
local joining = not taking and ticket ~= ''

-- The line is looked at only by the attempts that need it. A claim needs none of it: the
-- release that made the hand-off took this ticket out of the line in the same step, and
-- nothing puts it back (an attempt with it while the hand-off stands takes the lock). A free
-- lock, or a retry that finds it ours, asks whether anyone is in line (one ZCARD: an
-- uncontended acquire touches no other key of the line). A busy attempt without a ticket
-- only reads; one with a ticket joins, pruning on the way (line_tidy).
local queued = 0
if ours or not current then queued = redis.call('ZCARD', KEYS[4]) end
local before = {}
if queued > 0 then before = line_first(KEYS[4]) end

local needs = {{'pttl', KEYS[1]}, {'hmget', KEYS[2], 't'}}
if queued > 0 or joining then
  for _, command in ipairs(line_commands(KEYS[4], KEYS[5], KEYS[6], ticket)) do table.insert(needs, command) end
end
local fence = nil
local reserved = nil
if ours then
  local meta = meta_read(KEYS[2], current)
  if meta then fence = meta.fence end
  table.insert(needs, {'pexpire', KEYS[2], ARGV[2]})
  table.insert(needs, {'pexpire', KEYS[1], ARGV[2]})
elseif taking then
  -- A hand-off carries the fence release.lua took for this waiter; the woken waiter may
  -- already have given it to its job.
  if granted then reserved = meta_int(string.match(current, '^handoff:(%d+):')) end
  if not reserved then
    local failed = fence_refused(KEYS[3])
    if failed then return failed end
  end
  for _, command in ipairs({{'incr', KEYS[3]}, {'set', KEYS[3], '1'}, {'del', KEYS[2]},
                            {'hset', KEYS[2], 't', ARGV[1]}, {'pexpire', KEYS[2], ARGV[2]},
                            {'set', KEYS[1], ARGV[1], 'PX', ARGV[2]}}) do
    table.insert(needs, command)
  end
end
local auditing = ARGV[15] == '1' and taking and not ours
if auditing then
  for _, command in ipairs(audit_commands(audit_key(KEYS[6]))) do table.insert(needs, command) end
end
local denied = refused(needs)
if denied then return denied end

if queued > 0 then line_prune(KEYS[4], KEYS[5], now, ticket) end
if taking and not ours and not granted and queued > 0 then
  -- Free: ours only if no live waiter is ahead of us.
  local first = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
  taking = first == nil or first == ticket
end

if ours then
  -- Ours already: a retry after a reply lost on the way back. Same lease, same fence.
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ticket ~= '' and queued > 0 then line_remove(KEYS[4], KEYS[5], KEYS[6], ticket) end
  if queued > 0 then line_promote(KEYS[4], KEYS[5], KEYS[6], before, now, timing, ticket) end
  return {1, meta_int(fence) or 0}
end
if taking then
  fence = reserved or next_fence(KEYS[3], now_parts)
  meta_write(KEYS[2], meta_fields(ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], now, ARGV[2], fence, ARGV[9]), ARGV[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ticket ~= '' and queued > 0 then line_remove(KEYS[4], KEYS[5], KEYS[6], ticket) end
  if queued > 0 then line_promote(KEYS[4], KEYS[5], KEYS[6], before, now, timing, ticket) end
  if auditing then
    local event = 'acquired'
    if granted then event = 'claimed' end
    audit_append(audit_key(KEYS[6]), event, ARGV[1], ARGV[3], ARGV[4], ARGV[5], fence, nil, nil)
  end
  return {1, fence}
end

local block = holder_block(KEYS[1], KEYS[2], current, 0, now)
local place = -1
if ticket ~= '' then
  -- A free lock with a live waiter ahead was pruned above; a busy one is pruned here.
  if queued == 0 then line_tidy(KEYS[4], KEYS[5], KEYS[6], now, ticket, timing) end
  place = line_join(KEYS[4], KEYS[5], ticket, now, block[2], timing)
end
if queued > 0 then line_promote(KEYS[4], KEYS[5], KEYS[6], before, now, timing, ticket) end
block[3] = redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')
table.insert(block, 1, place)
table.insert(block, 1, 0)
return block
