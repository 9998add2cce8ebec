-- The audit log (rlock(1), AUDIT), spliced in by CMake where a script says
-- '-- @include audit.lua': acquire, release and force_release append what they did to
-- PREFIX{NAME}:log, a stream capped at about audit_cap entries.
--
-- The scripts write it, not the client, so that an entry exists exactly when the change it
-- records happened, in the same atomic step, whatever becomes of the client afterwards. Its
-- key is derived from the wake key the scripts already get (PREFIX{NAME}:wake): the same hash
-- tag, so the same cluster slot, and no extra key for callers that do not audit. A caller
-- that does not audit passes '' and the script runs exactly as before: one comparison.
--
-- Every entry has the same eight fields in the same order, empty when they do not apply:
-- Redis then stores the field names once per node of the stream (about 100 entries), not once
-- per entry. `token` is a fingerprint, never the token (a token is a credential: whoever
-- has it can release or renew the lock): the first 12 hex digits of its SHA-1.
-- The stream's TTL (audit_ttl_ms) is set again by each append: a lock name that has not been
-- used for that long leaves nothing behind, like every key but the fence counter.
-- @include guard.lua

local audit_cap = '1000'
local audit_ttl_ms = '2592000000' -- 30 days

-- audit_key(wake_key): PREFIX{NAME}:log, from PREFIX{NAME}:wake.
local function audit_key(wake_key)
  return string.sub(wake_key, 1, -6) .. ':log'
end

-- audit_commands(log_key): what audit_append runs, for refused() (guard.lua).
local function audit_commands(log_key)
  return {{'xadd', log_key, 'MAXLEN', '~', audit_cap, '*', 'event', 'x'}, {'pexpire', log_key, audit_ttl_ms}}
end

-- A field's value as stored: '' for nil or false, integers without an exponent.
local function audit_text(value)
  if not value then return '' end
  if type(value) == 'number' then return string.format('%d', value) end
  return value
end

-- audit_append(log_key, event, value, host, pid, user, fence, held_ms, by): one entry. `value`
-- is the lock key's value the event is about (a token, a hand-off value, another client's value).
local function audit_append(log_key, event, value, host, pid, user, fence, held_ms, by)
  local fingerprint = ''
  if value then fingerprint = string.sub(redis.sha1hex(value), 1, 12) end
  redis.call('XADD', log_key, 'MAXLEN', '~', audit_cap, '*', 'event', event, 'token', fingerprint, 'host',
             audit_text(host), 'pid', audit_text(pid), 'user', audit_text(user), 'fence', audit_text(fence), 'held_ms',
             audit_text(held_ms), 'by', audit_text(by))
  redis.call('PEXPIRE', log_key, audit_ttl_ms)
end

-- audit_held_ms(acquired_ms, now): how long a holder had the lock, or nil when its meta hash
-- did not say since when (or said something no clock would).
local function audit_held_ms(acquired_ms, now)
  local since = meta_int(acquired_ms)
  if not since or since > now then return nil end
  return now - since
end
