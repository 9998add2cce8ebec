-- rlock fence_confirm: the second phase of a quorum fence (QuorumLockStore, SPEC §6.6).
--
-- KEYS: lock, meta, fence
-- ARGV: token, fence (decimal, the maximum of the grants of the first phase)
-- Returns 1 when the token holds the lock here and this node's counter is now at least the
-- fence; 0 when another token holds it, or nobody.
--
-- Why: each node's grant (next_fence.lua) is only that node's counter. Taking the maximum of
-- the grants as the fence can go backwards (docs/quorum.md): a later majority may not include
-- the node that gave the maximum. Writing the maximum back to a majority, while that majority
-- still holds our token, means any later majority shares a node whose counter is already at
-- least our fence, and its grant there is larger. The token check is what makes "later"
-- true: a node that no longer holds our token may have granted someone else meanwhile, and
-- raising its counter then would prove nothing.
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return 0 end
local counter = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
local fence = tonumber(ARGV[2])
if fence > counter then redis.call('SET', KEYS[3], ARGV[2]) end
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('TYPE', KEYS[2])['ok'] == 'hash' then
  -- The meta hash says what fence the holder got, for `rlock status`.
  if redis.call('HEXISTS', KEYS[2], 't') == 1 then
    redis.call('HSET', KEYS[2], 'f', ARGV[2])
  elseif redis.call('HEXISTS', KEYS[2], 'token') == 1 then
    redis.call('HSET', KEYS[2], 'fence', ARGV[2])
  end
end
return 1
