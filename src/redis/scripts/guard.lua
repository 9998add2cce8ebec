-- What every writing script shares, spliced in by CMake where it says '-- @include guard.lua'.
--
-- Redis does not roll a script back when one of its commands fails: a script that took the
-- lock and was then refused the command that gives its meta hash a TTL would leave both
-- behind. So each script reads (and so type-checks) everything it needs, then asks
-- refused() about every command it may run, and writes only when nothing can fail any more.
-- OOM needs nothing more: Redis refuses only a script's first write that would need memory,
-- never one after a write went through.

-- refused(commands): an error reply (NOPERM …) naming the first command, with its key, that
-- the calling ACL user may not run, else nil. `commands` are argument lists, as for
-- redis.call. Redis before 7.0 has no redis.acl_check_cmd; there the order of the writes
-- (the lock key last) is all the protection.
local function refused(commands)
  if not redis.acl_check_cmd then return nil end
  for _, command in ipairs(commands) do
    if not redis.acl_check_cmd(unpack(command)) then
      return redis.error_reply('NOPERM this user may not run ' .. string.upper(command[1]) .. ' on ' ..
                               command[2] .. ', which rlock needs; see MINIMAL ACL in rlock(1)')
    end
  end
  return nil
end

-- meta_int(text): the integer a stored field holds (at most 16 digits and below 2^53, exact
-- as a Lua number; fences are 16 digits), or nil when it holds anything else: rlock trusts
-- nothing it reads back.
local function meta_int(text)
  if type(text) ~= 'string' or not string.match(text, '^%-?%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$') then
    return nil
  end
  local value = tonumber(text)
  if value >= 9007199254740992 or value <= -9007199254740992 then return nil end
  return value
end
