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
-- Returns {1, fence} when taken; otherwise {0, <holder block>} (see inspect.lua).
-- Redis does not roll a script back when a command in it fails (a key of the wrong type), so
-- every command that can fail that way runs before the first write: a failed acquire must
-- leave nothing behind.
-- @include next_fence.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  -- Ours already: a retry after a reply lost on the way back. Same lease, same fence.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  if ARGV[7] ~= '' then
    redis.call('ZREM', KEYS[4], ARGV[7])
  end
  return {1, tonumber(redis.call('HGET', KEYS[2], 'fence') or '0')}
end
if (not current) or (ARGV[9] ~= '' and current == ARGV[9]) then
  -- A hand-off from release.lua carries the fence it took for us ('handoff:FENCE:NOW_MS'); the
  -- woken waiter may already have given it to its job.
  local reserved = nil
  if current then reserved = string.match(current, '^handoff:(%d+):%d+$') end
  local fence = tonumber(reserved) or next_fence(KEYS[3], now_parts)
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'host', ARGV[3], 'pid', ARGV[4], 'user', ARGV[5],
             'command', ARGV[6], 'acquired_ms', now, 'ttl_ms', ARGV[2], 'fence', fence,
             'renewals', 0, 'supervised', ARGV[10])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  if ARGV[7] ~= '' then
    redis.call('ZREM', KEYS[4], ARGV[7])
  end
  return {1, fence}
end
local meta = redis.call('HMGET', KEYS[2], 'token', 'host', 'pid', 'user', 'command', 'acquired_ms',
                        'ttl_ms', 'fence', 'renewals', 'keeper_pid')
if ARGV[7] ~= '' then
  -- A waiter's ticket lives until its expiry score: a waiter killed with SIGKILL stops
  -- counting (and stops attracting hand-offs) once it passes.
  local ticket_ttl = tonumber(ARGV[8])
  redis.call('ZADD', KEYS[4], now + ticket_ttl, ARGV[7])
  if redis.call('PTTL', KEYS[4]) < ticket_ttl then
    redis.call('PEXPIRE', KEYS[4], ticket_ttl)
  end
end
local has_meta = 0
if meta[1] == current then has_meta = 1 end
local handoff = 0
if string.sub(current, 1, 8) == 'handoff:' then handoff = 1 end
return {0, 1, redis.call('PTTL', KEYS[1]), redis.call('ZCARD', KEYS[4]), now, has_meta, handoff,
        meta[2], meta[3], meta[4], meta[5], meta[6], meta[7], meta[8], meta[9], meta[10]}
