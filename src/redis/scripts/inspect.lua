-- rlock inspect: who holds a lock, read in one atomic step.
--
-- KEYS: lock, meta, waiters
-- Returns the holder block shared with acquire.lua and force_release.lua:
--   {held, pttl_ms, waiters, server_now_ms, has_meta, handoff,
--    host, pid, user, command, acquired_ms, ttl_ms, fence, renewals, keeper_pid}
-- has_meta is 0 when the key is held by another client (redis-py, redsync) that writes no
-- metadata; handoff is 1 while a release is passing the lock to a waiter.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[3], now, '+inf')
if not current then
  return {0, -2, waiters, now, 0, 0}
end
local meta = redis.call('HMGET', KEYS[2], 'token', 'host', 'pid', 'user', 'command', 'acquired_ms',
                        'ttl_ms', 'fence', 'renewals', 'keeper_pid')
local has_meta = 0
if meta[1] == current then has_meta = 1 end
local handoff = 0
if string.sub(current, 1, 8) == 'handoff:' then handoff = 1 end
return {1, redis.call('PTTL', KEYS[1]), waiters, now, has_meta, handoff,
        meta[2], meta[3], meta[4], meta[5], meta[6], meta[7], meta[8], meta[9], meta[10]}
