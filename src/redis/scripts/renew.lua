-- rlock renew: compare-and-pexpire on the token.
--
-- KEYS: lock, meta
-- ARGV: token, ttl_ms, keeper_pid ('0': a plain renewal, counted; otherwise record the keeper)
-- Returns 1 renewed, 0 the lock is free, -1 another token holds it.
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current then return -1 end
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], 'token') == ARGV[1] then
  if ARGV[3] == '0' then
    redis.call('HINCRBY', KEYS[2], 'renewals', 1)
  else
    redis.call('HSET', KEYS[2], 'keeper_pid', ARGV[3])
  end
  redis.call('HSET', KEYS[2], 'ttl_ms', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
