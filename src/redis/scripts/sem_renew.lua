-- rlock renew of a permit (--limit N, --shared): compare-and-extend on the token.
--
-- KEYS: lock, permits, limit
-- ARGV: token, ttl_ms, keeper_pid ('0': a plain renewal, counted; otherwise record the keeper)
-- Returns 1 renewed, 2 renewed but kept longer than asked (supervised, as renew.lua), 0 the
-- token holds no live permit (it lapsed or was released): nothing changes.
-- The permit's lapse (its score in permits) and its meta hash are set to ttl_ms from the
-- server's TIME; the lock key's marker and the limit key are lengthened to outlive it.
-- @include guard.lua
-- @include permits.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lock_key, permits, limit_key = KEYS[1], KEYS[2], KEYS[3]
local token = ARGV[1]
local live = permits_read(permits, now)
local index = permits_find(live, token)
if not index then return 0 end
local ttl = tonumber(ARGV[2])
local meta_key = permit_meta_key(lock_key, token)
local meta = meta_read(meta_key, token)
local kept = false
if meta and meta.supervised == '1' then
  local left = live[index][2] - now
  if left > ttl then
    ttl = left
    kept = true
  end
end
local current = redis.call('GET', lock_key)
local kind = permits_kind(current)
local denied = refused(permits_commands(lock_key, permits, limit_key, token))
if denied then return denied end
redis.call('ZADD', permits, now + ttl, token)
if kind and redis.call('PTTL', lock_key) < ttl then redis.call('PEXPIRE', lock_key, ttl) end
if redis.call('PTTL', limit_key) < ttl then redis.call('PEXPIRE', limit_key, ttl) end
if meta then meta_renewed(meta_key, meta, ARGV[3], ARGV[2], ttl, kept) end
if kept then return 2 end
return 1
