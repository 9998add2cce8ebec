-- rlock restore: a quorum renewal's repair of a node where the lock key vanished (QuorumLockStore).
--
-- KEYS: lock
-- ARGV: token, ttl_ms
-- Returns 1 when the key holds the token now (set again, SET NX, or still there: its TTL is
-- extended), -1 when another token holds it.
--
-- A node that restarted empty, or whose key was deleted, would otherwise leave the lock held
-- on fewer nodes after each such loss until a minority holds it: then another client could
-- take a majority. Setting it again with the same token only where it is absent never takes
-- it from anyone. The meta hash is not rewritten: the other nodes describe the holder.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
