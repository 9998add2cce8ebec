-- rlock acquire: one atomic attempt to take a lock, or to join its waiting line.
--
-- KEYS: lock, meta, fence, waiters, wake
-- ARGV: token, ttl_ms, host, pid, user, command, ticket, ticket_ttl_ms, claim, supervised
--
-- The lock key is a plain string holding the token with a PX TTL, so that other clients
-- (redis-py Lock, redsync) that SET NX the same key exclude us and we exclude them. It may be
-- taken when it is absent, or when it holds the hand-off value `claim` that a release pushed
-- to the wake list and this waiter popped: that is how a release passes the lock to the
-- longest-waiting client (BLPOP serves blocked clients first come, first served) without a
-- newcomer or the releaser itself slipping in between.
-- Fences come from next_fence.lua, or from the hand-off value being claimed.
-- supervised is '1' when exec or a keeper will hold the lock: renew.lua then never shortens it.
-- Returns {1, fence} when taken; otherwise {0, <holder block>} (see holder_block.lua).
-- All or nothing (guard.lua): the reads that type-check the keys and the permission checks
-- come first; when taking, the meta hash is written whole with its TTL before the lock key.
-- @include guard.lua
-- @include next_fence.lua
-- @include holder_block.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local queued = redis.call('ZCARD', KEYS[4])
local expired = queued > redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')
local ticket = ARGV[7]
-- needs(commands...): the commands this path writes with, for refused(), plus pruning the
-- expired tickets when there are any (a waiter killed with SIGKILL stops counting, and stops
-- attracting hand-offs, once its expiry score passes) and removing our ticket when we have one.
local function needs(commands)
  if expired then table.insert(commands, {'zremrangebyscore', KEYS[4], '-inf', now}) end
  if ticket ~= '' then table.insert(commands, {'zrem', KEYS[4], ticket}) end
  return commands
end
local function prune()
  if expired then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end
end
if current == ARGV[1] then
  -- Ours already: a retry after a reply lost on the way back. Same lease, same fence.
  local fence = redis.pcall('HGET', KEYS[2], 'fence')
  if type(fence) == 'table' and not string.find(fence['err'], 'WRONGTYPE', 1, true) then error(fence) end
  local denied = refused(needs({{'pexpire', KEYS[2], ARGV[2]}, {'pexpire', KEYS[1], ARGV[2]}}))
  if denied then return denied end
  prune()
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ticket ~= '' then
    redis.call('ZREM', KEYS[4], ticket)
  end
  return {1, meta_int(fence) or 0}
end
if (not current) or (ARGV[9] ~= '' and current == ARGV[9]) then
  -- A hand-off from release.lua carries the fence it took for us ('handoff:FENCE:NOW_MS'); the
  -- woken waiter may already have given it to its job.
  local reserved = nil
  if current then reserved = meta_int(string.match(current, '^handoff:(%d+):%d+$')) end
  if not reserved then
    local failed = fence_refused(KEYS[3])
    if failed then return failed end
  end
  local denied = refused(needs({{'incr', KEYS[3]}, {'set', KEYS[3], '1'}, {'del', KEYS[2]},
                                {'hset', KEYS[2], 'token', ARGV[1]}, {'pexpire', KEYS[2], ARGV[2]},
                                {'set', KEYS[1], ARGV[1], 'PX', ARGV[2]}}))
  if denied then return denied end
  prune()
  local fence = reserved or next_fence(KEYS[3], now_parts)
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'host', ARGV[3], 'pid', ARGV[4], 'user', ARGV[5],
             'command', ARGV[6], 'acquired_ms', now, 'ttl_ms', ARGV[2], 'fence', fence,
             'renewals', 0, 'supervised', ARGV[10])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ticket ~= '' then
    redis.call('ZREM', KEYS[4], ticket)
  end
  return {1, fence}
end
local block = holder_block(KEYS[1], KEYS[2], current, 0, now)
local ticket_ttl = tonumber(ARGV[8])
local joining = {}
if ticket ~= '' then
  joining = {{'zadd', KEYS[4], now + ticket_ttl, ticket}, {'pttl', KEYS[4]}, {'pexpire', KEYS[4], ticket_ttl}}
end
local denied = refused(needs(joining))
if denied then return denied end
prune()
if ticket ~= '' then
  -- A waiter's ticket lives until its expiry score.
  redis.call('ZADD', KEYS[4], now + ticket_ttl, ticket)
  if redis.call('PTTL', KEYS[4]) < ticket_ttl then
    redis.call('PEXPIRE', KEYS[4], ticket_ttl)
  end
end
block[3] = redis.call('ZCARD', KEYS[4])
table.insert(block, 1, 0)
return block
