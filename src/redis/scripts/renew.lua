-- rlock renew: compare-and-pexpire on the token.
--
-- KEYS: lock, meta
-- ARGV: token, ttl_ms, keeper_pid ('0': a plain renewal, counted; otherwise record the keeper)
-- Returns 1 renewed, 2 renewed but kept longer than asked (supervised), 0 the lock is free,
-- -1 another token holds it.
--
-- A lease that exec or a keeper holds (meta 'supervised' = '1', set by acquire.lua) is never
-- shortened: their safety deadline counts on the TTL of their own last renewal, so a job that
-- ran `rlock renew "$RLOCK_NAME" --ttl 300ms` would otherwise let a second holder in while
-- it still runs. Such a renewal keeps the longer of the asked TTL and the time left.
-- The meta hash is only a description: one that is not this token's (another type, another
-- token) is left alone, and a count that is not a number starts again, so that nothing in it
-- can fail a renewal. Permissions are asked before the first write (guard.lua). The hash
-- keeps its own form (meta.lua): an older rlock's long field names stay long.
-- @include guard.lua
-- @include meta.lua
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return -1 end
  return 0
end
local ttl = tonumber(ARGV[2])
local meta = meta_read(KEYS[2], current)
local kept = false
if meta and meta.supervised == '1' then
  local left = redis.call('PTTL', KEYS[1])
  if left > ttl then
    ttl = left
    kept = true
  end
end
local denied = refused({{'hset', KEYS[2], 'l', ARGV[2]}, {'pexpire', KEYS[2], ttl}, {'pexpire', KEYS[1], ttl}})
if denied then return denied end
redis.call('PEXPIRE', KEYS[1], ttl)
if meta then meta_renewed(KEYS[2], meta, ARGV[3], ARGV[2], ttl, kept) end
if kept then return 2 end
return 1
