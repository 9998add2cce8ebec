-- The lock's watchers (`rlock wait`), spliced in by CMake where a script says
-- '-- @include watchers.lua'.
--
-- A watcher waits for the lock to be free without taking it: it must neither join the
-- waiting line (line.lua) nor pop a hand-off meant for a waiter. So watchers have a set of
-- their own, WATCHERS (PREFIX{NAME}:watchers), scored by when each registration lapses, and
-- each blocks (BLPOP) on its own list WAKE:TICKET, a ticket no waiter has. watch.lua looks at
-- the lock and registers the watcher in one step, so a release after the look pushes to a
-- list the watcher will pop: none is missed. A release that frees the lock pushes 'free' to
-- every live watcher and forgets them; one that only shortens the lease (--min-hold) pushes
-- 'recheck'. A hand-off keeps the lock held: watchers sleep on (until the lease's end, when
-- they look again anyway). A watcher that died lapses with its registration.
-- @include line.lua

-- watchers_commands(watchers, wake): what watchers_notify may run, for refused() (guard.lua).
local function watchers_commands(watchers, wake)
  local key = line_wake_key(wake, 'x')
  return {{'zrangebyscore', watchers, '0', '1'}, {'del', watchers}, {'rpush', key, 'x'}, {'pexpire', key, '1'}}
end

-- watchers_notify(watchers, wake, now, value, ttl_ms): pushes `value` to each live watcher's
-- list (kept ttl_ms for a watcher between its look and its BLPOP), and forgets them all: a
-- watcher that looks again registers again.
local function watchers_notify(watchers, wake, now, value, ttl_ms)
  local live = redis.call('ZRANGEBYSCORE', watchers, '(' .. now, '+inf')
  for _, ticket in ipairs(live) do
    local key = line_wake_key(wake, ticket)
    redis.call('RPUSH', key, value)
    redis.call('PEXPIRE', key, ttl_ms)
  end
  redis.call('DEL', watchers)
end
