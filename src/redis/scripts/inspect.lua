-- rlock inspect: who holds a lock, read in one atomic step.
--
-- KEYS: lock, meta, line_expiry
-- Returns the holder block of holder_block.lua; its waiters count is the live tickets in
-- line (line.lua). Reads only.
-- @include holder_block.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
return holder_block(KEYS[1], KEYS[2], current, waiters, now)
