-- The meta hash (who holds a lock), spliced in by CMake where a script says
-- '-- @include meta.lua': acquire.lua writes it, the scripts that report or keep a holder read it.
--
-- Redis keeps a small hash as one listpack, a few bytes per field, as long as every value fits
-- in hash-max-listpack-value (64 bytes by default); one longer value turns the whole hash into
-- a hashtable, about four times the bytes. So the hash is kept lean: one-letter field names,
-- the token's first 16 hex digits instead of all 32 (the lock key holds the whole token; the
-- hash only has to say which token it describes), no field for a value that is its default
-- (renewals 0, not supervised), and values the client cut to 64 bytes (RedisLockStore).
--
--   t token fingerprint   h host          p pid          u user          c command
--   a acquired_ms         l ttl_ms        f fence        n renewals      s supervised ('1')
--   k keeper_pid
--
-- An rlock from before this layout wrote the same fields under long names, with the whole
-- token. Such a hash is still read (a lock taken before an upgrade is released, renewed or
-- shown after it), and a renewal keeps it in its own form.

local meta_short_names = {'t', 'h', 'p', 'u', 'c', 'a', 'l', 'f', 'n', 's', 'k'}
local meta_long_names = {'token', 'host', 'pid', 'user', 'command', 'acquired_ms', 'ttl_ms', 'fence', 'renewals',
                         'supervised', 'keeper_pid'}

-- meta_fingerprint(token): what the `t` field holds for `token`.
local function meta_fingerprint(token)
  return string.sub(token, 1, 16)
end

-- meta_fields(token, host, pid, user, command, acquired_ms, ttl_ms, fence, supervised): the
-- field-value list for HSET of a new acquisition's hash.
local function meta_fields(token, host, pid, user, command, acquired_ms, ttl_ms, fence, supervised)
  local fields = {'t', meta_fingerprint(token), 'h', host, 'p', pid, 'u', user, 'c', command, 'a', acquired_ms,
                  'l', ttl_ms, 'f', fence}
  if supervised == '1' then
    table.insert(fields, 's')
    table.insert(fields, '1')
  end
  return fields
end

-- meta_write(meta_key, fields, ttl_ms): writes a new acquisition's hash (meta_fields) whole,
-- with its TTL. The hash is normally absent here (a release deletes it, and it expires with
-- the lock key), so one HSET writes it whole: HSET says how many fields it added, and when
-- that is fewer than it wrote (a hash left behind, say by a lock key deleted by hand: it has
-- `t` and the other fields every acquisition writes), or the key is of another type, the key is
-- deleted and the hash written again. A DEL first on every acquisition would cost a command
-- for a case that hardly happens. (A hash in the older form shares no field name with this one;
-- one left behind keeps its fields beside the new ones, and is read as the new form.)
-- Write permission is asked by the caller: hset, del and pexpire on meta_key.
local function meta_write(meta_key, fields, ttl_ms)
  local added = redis.pcall('HSET', meta_key, unpack(fields))
  if type(added) == 'table' then
    if not string.find(added['err'] or '', 'WRONGTYPE', 1, true) then error(added) end
    added = -1
  end
  if added ~= #fields / 2 then
    redis.call('DEL', meta_key)
    redis.call('HSET', meta_key, unpack(fields))
  end
  redis.call('PEXPIRE', meta_key, ttl_ms)
end

-- meta_read(meta_key, current): the meta hash when it describes the holder whose token is
-- `current` (the lock key's value), else nil. A table with the fields as stored under their
-- long names (false when missing; renewals '0' and supervised '0' when the lean form leaves
-- them out), and `names`, the field names to write back in the hash's own form. Reads only; a
-- key of another type describes no holder, which is not an error.
local function meta_read(meta_key, current)
  if not current then return nil end
  local asked = {}
  for _, name in ipairs(meta_short_names) do table.insert(asked, name) end
  for _, name in ipairs(meta_long_names) do table.insert(asked, name) end
  local values = redis.pcall('HMGET', meta_key, unpack(asked))
  if values['err'] then
    if not string.find(values['err'], 'WRONGTYPE', 1, true) then error(values) end
    return nil
  end
  local count = #meta_short_names
  local offset
  local names
  local fingerprint = values[1]
  if type(fingerprint) == 'string' and #fingerprint == 16 and fingerprint == meta_fingerprint(current) then
    offset = 0
    names = meta_short_names
  elseif values[count + 1] == current then
    offset = count
    names = meta_long_names
  else
    return nil
  end
  local meta = {names = {}}
  for i, long_name in ipairs(meta_long_names) do
    meta[long_name] = values[offset + i]
    meta.names[long_name] = names[i]
  end
  if offset == 0 then
    meta.renewals = meta.renewals or '0'
    meta.supervised = meta.supervised or '0'
  end
  return meta
end

-- meta_renewed(meta_key, meta, keeper_arg, ttl_arg, ttl, kept): a renewal's marks on the meta
-- hash `meta` (meta_read's): one more renewal, or the keeper's pid when keeper_arg is not '0';
-- the new TTL (ttl_arg, ms as given) unless the lease was `kept` longer; the hash lives `ttl`
-- more. Needs meta_int (guard.lua).
local function meta_renewed(meta_key, meta, keeper_arg, ttl_arg, ttl, kept)
  local fields = {}
  if keeper_arg == '0' then
    local renewals = meta_int(meta.renewals)
    if not renewals or renewals < 0 then renewals = 0 end
    fields = {meta.names.renewals, string.format('%d', renewals + 1)}
  else
    fields = {meta.names.keeper_pid, keeper_arg}
  end
  if not kept then
    table.insert(fields, meta.names.ttl_ms)
    table.insert(fields, ttl_arg)
  end
  redis.call('HSET', meta_key, unpack(fields))
  redis.call('PEXPIRE', meta_key, ttl)
end
