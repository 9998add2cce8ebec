// SPDX-License-Identifier: MIT
// RedisLockStore: LockStore operations as Lua scripts and plain commands.
#include "redis/redis_lock_store.hpp"

#include "redis/scripts.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace rlock::redis {

namespace {

// How long a release's hand-off value waits for the woken waiter to claim it.
constexpr std::int64_t k_handoff_ttl_ms = 2000;

std::string field(ReplyView reply) { return reply.is_nil() ? std::string() : std::string(reply.string()); }
std::int64_t number(ReplyView reply) { return reply.is_nil() ? 0 : reply.integer(); }

// Reads the holder block of inspect.lua starting at `at`.
lock::HolderInfo holder_from(ReplyView reply, std::size_t at) {
  lock::HolderInfo info;
  info.held = reply[at].integer() == 1;
  info.remaining_ms = reply[at + 1].integer(); // -1: the key has no TTL
  info.waiters = reply[at + 2].integer();
  info.server_now_ms = reply[at + 3].integer();
  if (!info.held) {
    info.remaining_ms = 0;
    return info;
  }
  info.has_metadata = reply[at + 4].integer() == 1;
  info.handoff = reply[at + 5].integer() == 1;
  if (info.has_metadata) {
    info.meta.host = field(reply[at + 6]);
    info.meta.pid = number(reply[at + 7]);
    info.meta.user = field(reply[at + 8]);
    info.meta.command = field(reply[at + 9]);
    info.acquired_at_ms = number(reply[at + 10]);
    info.ttl_ms = number(reply[at + 11]);
    info.fence = number(reply[at + 12]);
    info.renewals = number(reply[at + 13]);
    info.keeper_pid = number(reply[at + 14]);
  }
  return info;
}

// What a hand-off value from release.lua or force_release.lua says: 'handoff:FENCE:NOW_MS'.
// Other values (a 'recheck', an older rlock's 'handoff:SECONDS.MICROSECONDS') say nothing.
std::optional<lock::Handoff> parse_handoff(std::string_view value) {
  constexpr std::string_view k_prefix = "handoff:";
  if (!value.starts_with(k_prefix)) return std::nullopt;
  value.remove_prefix(k_prefix.size());
  std::size_t colon = value.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  lock::Handoff handoff;
  if (!parse_int(value.substr(0, colon), handoff.fence) || !parse_int(value.substr(colon + 1), handoff.server_ms)) {
    return std::nullopt;
  }
  handoff.ttl = lock::Millis(k_handoff_ttl_ms);
  return handoff;
}

// `deadline`, but no later than one I/O timeout from now: one stuck attempt leaves time for
// retries within it.
Deadline bounded(const Connection& connection, std::optional<lock::TimePoint> deadline) {
  Deadline until = std::chrono::steady_clock::now() + connection.io_timeout();
  return deadline ? std::min(until, *deadline) : until;
}

Reply checked(Reply reply, std::string_view context) {
  if (reply.view().is_error()) throw_reply_error(reply.view(), context);
  return reply;
}

} // namespace

std::string KeySchema::lock(std::string_view name) const { return fmt::format("{}{{{}}}", m_prefix, name); }
std::string KeySchema::meta(std::string_view name) const { return lock(name) + ":meta"; }
std::string KeySchema::fence(std::string_view name) const { return lock(name) + ":fence"; }
std::string KeySchema::waiters(std::string_view name) const { return lock(name) + ":waiters"; }
std::string KeySchema::wake(std::string_view name) const { return lock(name) + ":wake"; }

std::string KeySchema::scan_pattern() const {
  std::string pattern;
  for (char c : m_prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
    pattern += c;
  }
  return pattern + "{*}";
}

std::string KeySchema::name_of(std::string_view key) const {
  if (!key.starts_with(m_prefix)) return {};
  key.remove_prefix(m_prefix.size());
  if (key.size() < 3 || key.front() != '{' || key.back() != '}') return {};
  std::string_view name = key.substr(1, key.size() - 2);
  if (name.find_first_of("{}") != std::string_view::npos) return {};
  return std::string(name);
}

RedisLockStore::RedisLockStore(Connection& connection, std::string prefix)
    : m_connection(connection), m_keys(std::move(prefix)) {}

void RedisLockStore::send_acquire(const lock::AcquireRequest& request) {
  if (request.limit && *request.limit != 1) {
    throw ConfigError(fmt::format("lock '{}': a limit of {} holders needs semaphores, which this store does not "
                                  "hold yet",
                                  printable(request.name), *request.limit));
  }
  std::string lock_key = m_keys.lock(request.name);
  std::string meta_key = m_keys.meta(request.name);
  std::string fence_key = m_keys.fence(request.name);
  std::string waiters_key = m_keys.waiters(request.name);
  std::string wake_key = m_keys.wake(request.name);
  std::string ttl = std::to_string(request.ttl.count());
  std::string pid = std::to_string(request.meta.pid);
  std::string ticket_ttl = std::to_string(request.ticket_ttl.count());
  std::string_view claim = request.ticket.empty() ? std::string_view() : std::string_view(m_claim);
  std::string_view supervised = request.supervised ? "1" : "0";
  m_connection.send_eval(scripts::k_acquire, {lock_key, meta_key, fence_key, waiters_key, wake_key},
                         {request.token, ttl, request.meta.host, pid, request.meta.user, request.meta.command,
                          request.ticket, ticket_ttl, claim, supervised});
  m_sent_key = std::move(lock_key);
}

lock::AcquireResult RedisLockStore::receive_acquire(std::optional<lock::TimePoint> deadline) {
  Reply reply = checked(m_connection.receive_eval(deadline), fmt::format("acquiring {}", m_sent_key));
  // Answered: a claim either took the lock or found the hand-off gone; either way it is spent.
  m_claim.clear();
  ReplyView view = reply.view();
  lock::AcquireResult result;
  if (view[0].integer() == 1) {
    result.acquired = true;
    result.fence = view[1].integer();
  } else {
    result.holder = holder_from(view, 1);
  }
  return result;
}

void RedisLockStore::send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) {
  std::string lock_key = m_keys.lock(request.name);
  std::string meta_key = m_keys.meta(request.name);
  std::string ttl_text = std::to_string(request.ttl.count());
  std::string keeper = std::to_string(request.keeper_pid);
  m_connection.send_eval(scripts::k_renew, {lock_key, meta_key}, {request.token, ttl_text, keeper},
                         bounded(m_connection, deadline));
  m_sent_key = std::move(lock_key);
}

lock::TokenCheck RedisLockStore::receive_renew(std::optional<lock::TimePoint> deadline) {
  Reply reply =
      checked(m_connection.receive_eval(bounded(m_connection, deadline)), fmt::format("renewing {}", m_sent_key));
  switch (reply.view().integer()) {
  case 1:
  case 2: return lock::TokenCheck::ok; // 2: a supervised lease kept longer than asked
  case 0: return lock::TokenCheck::free;
  default: return lock::TokenCheck::taken;
  }
}

void RedisLockStore::send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                                  std::optional<lock::TimePoint> deadline) {
  std::string lock_key = m_keys.lock(name);
  std::string meta_key = m_keys.meta(name);
  std::string waiters_key = m_keys.waiters(name);
  std::string wake_key = m_keys.wake(name);
  std::string min_hold_text = std::to_string(min_hold.count());
  std::string handoff_ttl = std::to_string(k_handoff_ttl_ms);
  std::string fence_key = m_keys.fence(name);
  m_connection.send_eval(scripts::k_release, {lock_key, meta_key, waiters_key, wake_key, fence_key},
                         {token, min_hold_text, handoff_ttl}, bounded(m_connection, deadline));
  m_sent_key = std::move(lock_key);
}

lock::ReleaseResult RedisLockStore::receive_release(std::optional<lock::TimePoint> deadline) {
  Reply reply =
      checked(m_connection.receive_eval(bounded(m_connection, deadline)), fmt::format("releasing {}", m_sent_key));
  ReplyView view = reply.view();
  lock::ReleaseResult result;
  switch (view[0].integer()) {
  case 1:
    result.outcome = lock::TokenCheck::ok;
    result.kept_for = lock::Millis(view[1].integer());
    result.keeper_pid = view[2].integer();
    result.keeper_host = field(view[3]);
    break;
  case 0: result.outcome = lock::TokenCheck::free; break;
  default: result.outcome = lock::TokenCheck::taken; break;
  }
  return result;
}

lock::HolderInfo RedisLockStore::force_release(std::string_view name) {
  std::string lock_key = m_keys.lock(name);
  std::string meta_key = m_keys.meta(name);
  std::string waiters_key = m_keys.waiters(name);
  std::string wake_key = m_keys.wake(name);
  std::string fence_key = m_keys.fence(name);
  std::string handoff_ttl = std::to_string(k_handoff_ttl_ms);
  Reply reply = checked(m_connection.eval(scripts::k_force_release,
                                          {lock_key, meta_key, waiters_key, wake_key, fence_key}, {handoff_ttl}),
                        fmt::format("force-releasing {}", lock_key));
  return holder_from(reply.view(), 0);
}

lock::HolderInfo RedisLockStore::inspect(std::string_view name) {
  std::string lock_key = m_keys.lock(name);
  std::string meta_key = m_keys.meta(name);
  std::string waiters_key = m_keys.waiters(name);
  Reply reply = checked(m_connection.eval(scripts::k_inspect, {lock_key, meta_key, waiters_key}, {}),
                        fmt::format("inspecting {}", lock_key));
  return holder_from(reply.view(), 0);
}

std::vector<std::string> RedisLockStore::list_names() {
  std::vector<std::string> names;
  std::string cursor = "0";
  std::string pattern = m_keys.scan_pattern();
  do {
    Reply reply = checked(m_connection.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}), "listing locks");
    ReplyView view = reply.view();
    cursor = std::string(view[0].string());
    ReplyView keys = view[1];
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::string name = m_keys.name_of(keys[i].string());
      if (!name.empty()) names.push_back(std::move(name));
    }
  } while (cursor != "0");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

bool RedisLockStore::wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                   int interrupt_fd) {
  (void)ticket;
  std::string wake_key = m_keys.wake(name);
  // BLPOP takes seconds with a fractional part; 0 would mean forever, so never send it.
  double seconds = std::max<double>(static_cast<double>(timeout.count()) / 1000.0, 0.001);
  std::string timeout_text = fmt::format("{:.3f}", seconds);
  Deadline until = std::chrono::steady_clock::now() + timeout + m_connection.io_timeout();
  Reply reply = checked(m_connection.command({"BLPOP", wake_key, timeout_text}, until, interrupt_fd),
                        fmt::format("waiting on {}", wake_key));
  m_claim.clear();
  if (reply.view().is_nil()) return false;
  m_claim = std::string(reply.view()[1].string());
  return true;
}

std::optional<lock::Handoff> RedisLockStore::handoff() const {
  if (m_claim.empty()) return std::nullopt;
  return parse_handoff(m_claim);
}

void RedisLockStore::leave_queue(std::string_view name, std::string_view ticket) {
  std::string waiters_key = m_keys.waiters(name);
  checked(m_connection.command({"ZREM", waiters_key, ticket}), "leaving the waiting line");
}

} // namespace rlock::redis
