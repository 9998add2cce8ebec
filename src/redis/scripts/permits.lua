-- Permits: the holders of a semaphore (--limit N) or of a shared lock's readers (--shared),
-- spliced in by CMake where a script says '-- @include permits.lua'.
--
-- A name held by permits keeps three things besides the waiting line (line.lua), all in its
-- {NAME} slot:
--   LOCK            the plain lock key, holding a marker: 'sem:N' (a semaphore of limit N) or
--                   'shared' (readers), with the PX of the permit that lapses last. So a
--                   foreign client's SET NX on it fails while any permit is held (readers
--                   exclude writers of any client), and a mutex acquire (acquire.lua) sees
--                   the name busy, or taken as another kind.
--   LOCK:permits    a sorted set, one member per permit, scored by when it lapses (the
--                   server's TIME + its lease, in ms). A member is a holder's token, or a
--                   reservation 'handoff:FENCE:NOW_MS:TICKET' that a release made for the
--                   first waiter (a semaphore's hand-off; the waiter claims it with its token).
--                   A lapsed member counts for nothing and is taken out by the next script
--                   that writes: a crashed holder's permit lapses with its lease.
--   LOCK:permits:TOKEN  each holder's meta hash (meta.lua's fields), with its permit's lease.
--   LOCK:limit      the kind the holders and waiters set ('N' or 'shared'), kept while any
--                   of them is there (PX at least the line's), so that an acquire of another
--                   kind finds it even between holders.
-- Hand-offs: a semaphore's release reserves the freed permit for the first live waiter (a
-- member of LOCK:permits), pushed to its list as for the mutex. Readers and writers share one
-- line: the last reader out hands the whole lock to the first waiter with a mutex hand-off
-- value in LOCK (handoff_grant.lua's form), which either a writer (acquire.lua) or a reader
-- (sem_acquire.lua) claims; readers never wait for readers unless a ticket is ahead of them.
-- @include meta.lua

-- The keys derived from LOCK (same hash tag, so the same slot).
local function permit_meta_key(lock_key, token)
  return lock_key .. ':permits:' .. token
end

-- permits_kind(current): the kind the lock key's value says: 'sem', N | 'shared', 0 | nil
-- (free, a mutex holder, a hand-off or a foreign client).
local function permits_kind(current)
  if not current then return nil end
  local limit = string.match(current, '^sem:(%d+)$')
  if limit then return 'sem', tonumber(limit) end
  if current == 'shared' then return 'shared', 0 end
  return nil
end

-- permits_marker(limit): the lock key's value for a kind (limit 0: shared).
local function permits_marker(limit)
  if limit == 0 then return 'shared' end
  return 'sem:' .. string.format('%d', limit)
end

-- permits_read(permits, now): the live permits as {member, lapses_at} sorted by lapse, and
-- the lapsed members. Reads only (WRONGTYPE on a key of another type, before any write).
local function permits_read(permits, now)
  local all = redis.call('ZRANGE', permits, 0, -1, 'WITHSCORES')
  local live, lapsed = {}, {}
  for i = 1, #all, 2 do
    local lapses_at = tonumber(all[i + 1])
    if lapses_at > now then
      table.insert(live, {all[i], lapses_at})
    else
      table.insert(lapsed, all[i])
    end
  end
  table.sort(live, function(a, b) return a[2] < b[2] end)
  return live, lapsed
end

-- permits_find(live, member): the index of `member` among the live permits, else nil.
local function permits_find(live, member)
  for i, permit in ipairs(live) do
    if permit[1] == member then return i end
  end
  return nil
end

-- permits_commands(lock_key, permits, limit_key, token): what the permit scripts may write,
-- for refused() (guard.lua); the per-holder hash is checked under `token`'s name.
local function permits_commands(lock_key, permits, limit_key, token)
  local meta_key = permit_meta_key(lock_key, token ~= '' and token or 'x')
  return {{'zadd', permits, '0', 'x'}, {'zrem', permits, 'x'}, {'del', permits}, {'del', meta_key},
          {'hset', meta_key, 't', 'x'}, {'pexpire', meta_key, '1'}, {'set', lock_key, 'x', 'PX', '1'},
          {'del', lock_key}, {'pttl', lock_key}, {'pexpire', lock_key, '1'}, {'set', limit_key, 'x', 'PX', '1'},
          {'del', limit_key}, {'pttl', limit_key}}
end

-- permits_settle(lock_key, permits, limit_key, limit, now, keep_ms, owned): after permits
-- changed, sets the lock key's marker with the PX of the last live permit (deletes it and the
-- set when none is left), and the limit key to live at least as long, and at least keep_ms (the
-- line's life while waiters wait). `owned`: the lock key is the permits' to set (free, their
-- marker, or a hand-off being claimed); a key someone else holds now (broken by hand and
-- taken) is left alone. Returns true when no permit is left.
local function permits_settle(lock_key, permits, limit_key, limit, now, keep_ms, owned)
  local last = redis.call('ZRANGE', permits, -1, -1, 'WITHSCORES')
  local left = 0
  if last[2] then left = tonumber(last[2]) - now end
  if left <= 0 then
    redis.call('DEL', permits)
    if owned then redis.call('DEL', lock_key) end
  elseif owned then
    redis.call('SET', lock_key, permits_marker(limit), 'PX', left)
  end
  local keep = math.max(left, keep_ms)
  if keep <= 0 then
    redis.call('DEL', limit_key)
  elseif redis.call('PTTL', limit_key) < keep then
    redis.call('SET', limit_key, limit == 0 and 'shared' or string.format('%d', limit), 'PX', keep)
  end
  return left <= 0
end

-- permits_block(lock_key, live, waiters, now, limit): who holds a name held by permits, as the
-- reply block of the scripts that report it:
--   {2, pttl_ms, waiters, server_now_ms, limit (0: shared), count, then per live permit, by
--    lapse: remaining_ms, has_meta, reserved, host, pid, user, command, acquired_ms, ttl_ms,
--    fence, renewals, keeper_pid}
-- (reserved: 1 for a hand-off reservation, whose other fields are nil). Reads only.
local function permits_block(lock_key, live, waiters, now, limit)
  local block = {2, redis.call('PTTL', lock_key), waiters, now, limit, #live}
  for _, permit in ipairs(live) do
    local member = permit[1]
    local meta = nil
    local reserved = 0
    if string.sub(member, 1, 8) == 'handoff:' then
      reserved = 1
    else
      meta = meta_read(permit_meta_key(lock_key, member), member)
    end
    table.insert(block, permit[2] - now)
    if meta then
      for _, value in ipairs({1, reserved, meta.host, meta.pid, meta.user, meta.command, meta.acquired_ms,
                              meta.ttl_ms, meta.fence, meta.renewals, meta.keeper_pid}) do
        table.insert(block, value)
      end
    else
      for _, value in ipairs({0, reserved, false, false, false, false, false, false, false, false, false}) do
        table.insert(block, value)
      end
    end
  end
  return block
end
