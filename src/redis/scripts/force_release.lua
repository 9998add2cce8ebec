-- rlock force-release: break a lock whoever holds it (an operator's action), or only if it is
-- still the holder the operator saw (--expect-token, --expect-holder).
--
-- KEYS: lock, meta, line, line_expiry, wake, fence, watchers
-- ARGV: expect ('' anyone, 'token', 'holder'), expected_a, expected_b, handoff_ttl_ms,
--       head_slack_ms, runner_slack_ms, far_ttl_ms, max_fallback_ms, promotion_slack_ms,
--       audit, by
--   'token':  expected_a is the whole token the lock key must hold;
--   'holder': expected_a and expected_b are the host and pid the meta hash must describe
--             (the hash must describe the lock key's value: a foreign or stale hash is no holder).
-- Returns {outcome, <holder block (holder_block.lua)>}: outcome 1 broken (the block says who
-- was evicted), 0 it was free, -1 it is not the expected holder (nothing changed; the block
-- says who holds it). Like release.lua, hands the lock to the first live waiter in line if
-- there is one, and wakes the watchers (watchers.lua) when that frees it. The check and the break are one script: a holder that releases, and a new one
-- that takes the lock, between `status` and this script are never broken by mistake.
-- All or nothing (guard.lua): reads and permission checks before the first write.
-- A break is appended to the audit log (audit.lua) as 'forced', with who held the lock and
-- `by` (who broke it: 'user@host:pid'), when audit is '1' and also whenever the log exists:
-- breaking a lock is the event an audit is for, so a client that does not audit must not
-- leave it out of a log that others keep.
-- @include guard.lua
-- @include handoff_grant.lua
-- @include watchers.lua
-- @include holder_block.lua
-- @include audit.lua
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local timing = line_timing(ARGV, 5)
local current = redis.call('GET', KEYS[1])
local waiters = redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')
local queued = redis.call('ZCARD', KEYS[3])
local watching = redis.call('ZCARD', KEYS[7])
local block = holder_block(KEYS[1], KEYS[2], current, waiters, now)
local function answer(outcome)
  local out = {outcome}
  for _, value in ipairs(block) do table.insert(out, value) end
  return out
end
if ARGV[1] == 'token' then
  if current ~= ARGV[2] then
    if not current then return answer(0) end
    return answer(-1)
  end
elseif ARGV[1] == 'holder' then
  if not current then return answer(0) end
  if block[5] ~= 1 or block[7] ~= ARGV[2] or block[8] ~= ARGV[3] then return answer(-1) end
end
if not current then
  return answer(0)
end
local look = nil
if queued > 0 then look = let_go_look(KEYS[3], KEYS[4], now, nil) end
local live = look and #look.live or 0
if live > 0 then
  local failed = fence_refused(KEYS[6])
  if failed then return failed end
end
local needs = let_go_commands(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], live, ARGV[4])
if watching > 0 then
  for _, command in ipairs(watchers_commands(KEYS[7], KEYS[5])) do table.insert(needs, command) end
end
local log_key = audit_key(KEYS[5])
local auditing = ARGV[10] == '1' or redis.call('PTTL', log_key) ~= -2
if auditing then
  for _, command in ipairs(audit_commands(log_key)) do table.insert(needs, command) end
end
local denied = refused(needs)
if denied then return denied end
local freed = let_go(KEYS[1], KEYS[2], KEYS[6], KEYS[3], KEYS[4], KEYS[5], look, nil, now_parts, now, ARGV[4], timing)
if freed and watching > 0 then watchers_notify(KEYS[7], KEYS[5], now, 'free', timing.promotion_slack) end
if auditing then
  if block[5] == 1 then
    audit_append(log_key, 'forced', current, block[7], block[8], block[9], block[13], audit_held_ms(block[11], now),
                 ARGV[11])
  else
    audit_append(log_key, 'forced', current, nil, nil, nil, nil, nil, ARGV[11])
  end
end
return answer(1)
