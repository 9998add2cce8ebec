-- The waiting line, spliced in by CMake where a script says '-- @include line.lua'.
--
-- Two sorted sets hold it, each with one member per waiting rlock, its ticket:
--   LINE          scored by arrival: the server's clock (ms) when the ticket joined. A
--                 re-check keeps the score, so nothing a waiter does costs it its place.
--   LINE:expiry   scored by when the ticket stops counting (a waiter killed with SIGKILL
--                 leaves its ticket behind; the next script to look prunes it).
-- Each waiter blocks (BLPOP) on its own list, WAKE:TICKET (WAKE is the KEYS entry the script
-- gets, PREFIX{NAME}:wake): a release pushes the hand-off value to the first ticket's list, so
-- the lock goes to the longest-waiting client whatever order the waiters blocked in.
--
-- Only the first three waiters re-check by themselves, the first when the holder's lease would
-- end, the second some seconds later (if the first died, its ticket has lapsed by then), the
-- third after the second's ticket would have lapsed too (lock/acquirer.cpp, fallback_sleep);
-- the others only refresh their tickets, rarely. So a ticket's expiry depends on its place:
--   first:  the lease's end + head_slack;  second: the lease's end + runner_slack;
--   others: far_ttl from now.
-- When a script moves a waiter up to first or second place, it tells that waiter to re-check
-- at once ('recheck' on its list) and gives it promotion_slack to do so.
-- The timing comes from the client (lock/lock_store.hpp, namespace line) as a table:
--   {head_slack, runner_slack, far_ttl, max_fallback, promotion_slack} in ms.

-- line_timing(args, at): the timing table from five ARGV entries starting at `at`.
local function line_timing(args, at)
  return {head_slack = tonumber(args[at]), runner_slack = tonumber(args[at + 1]), far_ttl = tonumber(args[at + 2]),
          max_fallback = tonumber(args[at + 3]), promotion_slack = tonumber(args[at + 4])}
end

-- line_wake_key(wake, ticket): a waiter's own list.
local function line_wake_key(wake, ticket)
  return wake .. ':' .. ticket
end

-- line_commands(line, expiry, wake, ticket): the commands the line's upkeep may run, reads
-- included (they come after writes), for refused() (guard.lua); the wake list is checked
-- under `ticket`'s name (ACLs match keys by pattern, and every waiter's list shares the prefix).
local function line_commands(line, expiry, wake, ticket)
  local key = line_wake_key(wake, ticket ~= '' and ticket or 'x')
  return {{'zadd', line, 'NX', '0', 'x'}, {'zadd', expiry, '0', 'x'}, {'zrem', line, 'x'}, {'zrem', expiry, 'x'},
          {'zrange', line, '0', '1'}, {'zrank', line, 'x'}, {'zrangebyscore', expiry, '-inf', '0'},
          {'zcount', expiry, '0', '1'}, {'pttl', line}, {'pttl', expiry}, {'pexpire', line, '1'},
          {'pexpire', expiry, '1'}, {'del', key}, {'rpush', key, 'x'}, {'pexpire', key, '1'}}
end

-- line_first(line): the first two tickets, in arrival order.
local function line_first(line)
  return redis.call('ZRANGE', line, 0, 1)
end

-- line_forget(line, expiry, tickets): takes `tickets` out of both sets, one ZREM per set (in
-- chunks: Lua's unpack has a limit).
local function line_forget(line, expiry, tickets)
  for from = 1, #tickets, 500 do
    local chunk = {unpack(tickets, from, math.min(from + 499, #tickets))}
    redis.call('ZREM', line, unpack(chunk))
    redis.call('ZREM', expiry, unpack(chunk))
  end
end

-- line_lapsed(expiry, now, keep): the tickets that have lapsed, but `keep`'s (the caller's own:
-- its attempt shows it alive). Reads only.
local function line_lapsed(expiry, now, keep)
  local lapsed = {}
  for _, ticket in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
    if ticket ~= keep then table.insert(lapsed, ticket) end
  end
  return lapsed
end

-- line_prune(line, expiry, now, keep): removes the tickets that have lapsed, but `keep`'s.
local function line_prune(line, expiry, now, keep)
  line_forget(line, expiry, line_lapsed(expiry, now, keep))
end

-- line_remove(line, expiry, wake, ticket): takes `ticket` out of the line, with its list.
local function line_remove(line, expiry, wake, ticket)
  redis.call('ZREM', line, ticket)
  redis.call('ZREM', expiry, ticket)
  redis.call('DEL', line_wake_key(wake, ticket))
end

-- line_promote(line, expiry, wake, before, now, timing, skip, after): tells each of the first two
-- waiters that was not in its place in `before` (an earlier line_first) to re-check at once,
-- and gives it promotion_slack to do so. `skip`: the caller's own ticket, which needs no word.
-- `after`: the first two now, when the caller knows them (else read).
local function line_promote(line, expiry, wake, before, now, timing, skip, after)
  after = after or line_first(line)
  local keys = {}
  local scores = {}
  for place, ticket in ipairs(after) do
    if ticket ~= skip and before[place] ~= ticket then
      table.insert(keys, line_wake_key(wake, ticket))
      table.insert(scores, now + timing.promotion_slack)
      table.insert(scores, ticket)
    end
  end
  if #keys == 0 then return end
  redis.call('DEL', unpack(keys))
  for _, key in ipairs(keys) do
    redis.call('RPUSH', key, 'recheck')
    redis.call('PEXPIRE', key, timing.promotion_slack)
  end
  redis.call('ZADD', expiry, unpack(scores))
end

-- line_tidy(line, expiry, wake, now, keep, timing): line_prune, and line_promote for whoever it
-- moved up (the first two are read only when a ticket lapsed: a line where none did is
-- left as it is, for one read).
local function line_tidy(line, expiry, wake, now, keep, timing)
  local lapsed = line_lapsed(expiry, now, keep)
  if #lapsed == 0 then return end
  local before = line_first(line)
  line_forget(line, expiry, lapsed)
  line_promote(line, expiry, wake, before, now, timing, keep)
end

-- line_keep_alive(line, expiry, ttl): the line's keys live `ttl` more (every caller passes
-- the same far_ttl, so this never shortens them).
local function line_keep_alive(line, expiry, ttl)
  redis.call('PEXPIRE', line, ttl)
  redis.call('PEXPIRE', expiry, ttl)
end

-- line_join(line, expiry, ticket, now, pttl, timing): puts `ticket` in line, at the back if
-- it is new, else where it was; sets its expiry by its place and the lock's `pttl` (-2 free,
-- -1 no TTL). Returns its place (0: first).
local function line_join(line, expiry, ticket, now, pttl, timing)
  -- A re-check finds its ticket in place (one ZRANK); a new ticket joins at the back.
  local place = redis.call('ZRANK', line, ticket)
  if not place then
    redis.call('ZADD', line, 'NX', now, ticket)
    place = redis.call('ZRANK', line, ticket)
  end
  local left = pttl
  if left == -1 then left = timing.max_fallback end
  left = math.min(math.max(left, 0), timing.max_fallback)
  local ttl = timing.far_ttl
  if place == 0 then
    ttl = left + timing.head_slack
  elseif place == 1 then
    ttl = left + timing.runner_slack
  end
  redis.call('ZADD', expiry, now + ttl, ticket)
  line_keep_alive(line, expiry, timing.far_ttl)
  return place
end
