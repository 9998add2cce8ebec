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
-- can fail a renewal. Permissions are asked before the first write (guard.lua).
-- @include guard.lua
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return -1 end
  return 0
end
local ttl = tonumber(ARGV[2])
local meta = redis.pcall('HMGET', KEYS[2], 'token', 'renewals', 'supervised')
if meta['err'] then
  if not string.find(meta['err'], 'WRONGTYPE', 1, true) then error(meta) end
  meta = {}
end
local ours = meta[1] == ARGV[1]
local kept = false
if ours and meta[3] == '1' then
  local left = redis.call('PTTL', KEYS[1])
  if left > ttl then
    ttl = left
    kept = true
  end
end
local denied = refused({{'hset', KEYS[2], 'ttl_ms', ARGV[2]}, {'pexpire', KEYS[2], ttl}, {'pexpire', KEYS[1], ttl}})
if denied then return denied end
redis.call('PEXPIRE', KEYS[1], ttl)
if ours then
  local fields = {}
  if ARGV[3] == '0' then
    local renewals = meta_int(meta[2])
    if not renewals or renewals < 0 then renewals = 0 end
    fields = {'renewals', string.format('%d', renewals + 1)}
  else
    fields = {'keeper_pid', ARGV[3]}
  end
  if not kept then
    table.insert(fields, 'ttl_ms')
    table.insert(fields, ARGV[2])
  end
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if kept then return 2 end
return 1
