-- rlock watch: look at a lock for `rlock wait`, and register as its watcher while it is held
-- (watchers.lua), in one atomic step.
--
-- KEYS: lock, meta, line_expiry, watchers, wake
-- ARGV: ticket, registration_ms (how long the registration counts: longer than the watcher
--       sleeps before looking again)
-- Returns {value, <holder block>} (holder_block.lua), value being the lock key's (the holder's
-- token; '' when free: a quorum compares them across nodes). When the lock is free, registers
-- nothing.
-- Never touches the waiting line or a waiter's list.
-- All or nothing (guard.lua): reads and permission checks before the first write.
-- @include guard.lua
-- @include watchers.lua
-- @include holder_block.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
local block = holder_block(KEYS[1], KEYS[2], current, waiters, now)
table.insert(block, 1, current or '')
if not current then return block end
local registration = tonumber(ARGV[2])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
local denied = refused({{'zadd', KEYS[4], '0', 'x'}, {'zrem', KEYS[4], 'x'}, {'pttl', KEYS[4]}, {'pexpire', KEYS[4], '1'}})
if denied then return denied end
for _, ticket in ipairs(lapsed) do redis.call('ZREM', KEYS[4], ticket) end
redis.call('ZADD', KEYS[4], now + registration, ARGV[1])
if redis.call('PTTL', KEYS[4]) < registration then redis.call('PEXPIRE', KEYS[4], registration) end
return block
