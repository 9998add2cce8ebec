// SPDX-License-Identifier: MIT
// RedisLockStore: LockStore operations as Lua scripts and plain commands.
#include "redis/redis_lock_store.hpp"

#include "redis/reply_class.hpp"
#include "redis/scripts.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <limits>
#include <sys/types.h>
#include <thread>

namespace rlock::redis {

namespace {

// Redirects (MOVED, ASK) followed per operation: a slot map that settles needs one or two.
constexpr int k_max_redirects = 5;

// How long a release's hand-off value waits for the woken waiter to claim it.
constexpr std::int64_t k_handoff_ttl_ms = 2000;

// Holder data is read back from Redis, where anyone with access may have written anything:
// nothing in it is trusted. A field that is not what rlock writes reads as unknown (empty, or
// the `unknown` value of its lock::HolderInfo member), never as an error.
std::string field(ReplyView reply) { return reply.is_string() ? std::string(reply.string()) : std::string(); }

// A decimal integer field in [low, high], else `unknown`.
std::int64_t number(ReplyView reply, std::int64_t low, std::int64_t high, std::int64_t unknown = 0) {
  std::int64_t value = 0;
  if (reply.is_integer()) {
    value = reply.integer();
  } else if (!reply.is_string() || !parse_int(reply.string(), value)) {
    return unknown;
  }
  return value >= low && value <= high ? value : unknown;
}

// The longest string rlock stores in a lock's meta hash (host, user, command), in bytes. Redis
// keeps a hash whose values all fit in hash-max-listpack-value (64 by default) as one compact
// listpack; a single longer value, such as a long command line, turns the whole hash into a
// hashtable of about four times the bytes, for as long as the lock is held. A longer value is
// stored cut, ending in "…", which `status` shows as it is (see rlock(1), status).
constexpr std::size_t k_meta_value_max = 64;

// `text` as stored in the meta hash: at most k_meta_value_max bytes, cut between UTF-8
// characters and marked with "…" when it is longer.
std::string meta_value(std::string_view text) {
  if (text.size() <= k_meta_value_max) return std::string(text);
  constexpr std::string_view k_ellipsis = "\xe2\x80\xa6"; // U+2026 in UTF-8
  std::size_t keep = k_meta_value_max - k_ellipsis.size();
  // Back off over continuation bytes (10xxxxxx): never cut a character in two.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xc0) == 0x80) --keep;
  std::string out(text.substr(0, keep));
  out += k_ellipsis;
  return out;
}

constexpr std::int64_t k_max_pid = std::numeric_limits<pid_t>::max();
constexpr std::int64_t k_max_int = std::numeric_limits<std::int64_t>::max();
// The server's clock in Unix milliseconds, from 2000 to 2200: anything else is not a time.
constexpr std::int64_t k_min_unix_ms = 946'684'800'000;
constexpr std::int64_t k_max_unix_ms = 7'258'118'400'000;

// The line's timing (lock::k_line) as the scripts take it (line.lua's line_timing):
// head_slack, runner_slack, far_ttl, max_fallback, promotion_slack, in ms.
using LineArgs = std::array<std::string, 5>;
const LineArgs& line_args() {
  static const LineArgs args{std::to_string(lock::k_line.head_slack.count()),
                             std::to_string(lock::k_line.runner_slack.count()),
                             std::to_string(lock::k_line.far_ttl.count()), std::to_string(lock::k_max_fallback.count()),
                             std::to_string(lock::k_line.promotion_slack.count())};
  return args;
}

// The keys and the tail of the arguments of the scripts that may let a lock go to the next
// waiter (release, force_release, leave), in their KEYS and ARGV order: lock, meta, line,
// line:expiry, wake, fence, watchers; handoff_ttl_ms and the line's timing.
struct LetGoArgs {
  std::array<std::string, 7> keys;
  std::string handoff_ttl = std::to_string(k_handoff_ttl_ms);

  LetGoArgs(const KeySchema& schema, std::string_view name)
      : keys{schema.lock(name), schema.meta(name),  schema.line(name),    schema.line_expiry(name),
             schema.wake(name), schema.fence(name), schema.watchers(name)} {}
  Args key_args() const { return Args(keys.begin(), keys.end()); }
  // `first` (the script's own arguments), then handoff_ttl_ms and the timing, then `last`
  // (the audit arguments of release and force_release).
  Args args(Args first, const Args& last = {}) const {
    const LineArgs& line = line_args();
    first.push_back(handoff_ttl);
    first.insert(first.end(), line.begin(), line.end());
    first.insert(first.end(), last.begin(), last.end());
    return first;
  }
};

} // namespace

namespace {

// The holder's meta fields a holder block carries from reply[at] on: host, pid, user,
// command, acquired_ms, ttl_ms, fence, renewals, keeper_pid.
void meta_from(ReplyView reply, std::size_t at, lock::HolderInfo& holder) {
  holder.meta.host = field(reply[at]);
  holder.meta.pid = number(reply[at + 1], 1, k_max_pid);
  holder.meta.user = field(reply[at + 2]);
  holder.meta.command = field(reply[at + 3]);
  holder.acquired_at_ms = number(reply[at + 4], k_min_unix_ms, k_max_unix_ms);
  holder.ttl_ms = number(reply[at + 5], 1, k_max_int);
  holder.fence = number(reply[at + 6], 1, k_max_int);
  holder.renewals = number(reply[at + 7], 0, k_max_int, -1);
  holder.keeper_pid = number(reply[at + 8], 1, k_max_pid);
}

// The fields of one permit in permits.lua's block: remaining_ms, has_meta, reserved, host,
// pid, user, command, acquired_ms, ttl_ms, fence, renewals, keeper_pid.
constexpr std::size_t k_permit_fields = 12;

// permits.lua's block (a name held by permits), which starts at reply[at]:
// {2, pttl_ms, waiters, server_now_ms, limit, count, <count permits>}.
lock::LockInfo permits_from(ReplyView reply, std::size_t at) {
  lock::LockInfo info;
  info.waiters = std::max<std::int64_t>(reply[at + 2].integer(), 0);
  info.server_now_ms = std::max<std::int64_t>(reply[at + 3].integer(), 0);
  info.limit = std::max<std::int64_t>(reply[at + 4].integer(), 0);
  info.kind = info.limit == 0 ? lock::LockKind::shared : lock::LockKind::semaphore;
  const std::size_t count = static_cast<std::size_t>(std::max<std::int64_t>(reply[at + 5].integer(), 0));
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t first = at + 6 + i * k_permit_fields;
    if (reply.size() < first + k_permit_fields) break;
    lock::HolderInfo& holder = info.holders.emplace_back();
    holder.remaining_ms = std::max<std::int64_t>(reply[first].integer(), 0);
    holder.has_metadata = reply[first + 1].integer() == 1;
    holder.reserved = reply[first + 2].integer() == 1;
    if (holder.reserved) info.handoff = true;
    if (holder.has_metadata) meta_from(reply, first + 3, holder);
  }
  return info;
}

} // namespace

lock::LockInfo holder_from(ReplyView reply, std::size_t at) {
  if (reply[at].integer() == 2) return permits_from(reply, at);
  lock::LockInfo info;
  bool held = reply[at].integer() == 1;
  std::int64_t remaining_ms = std::max<std::int64_t>(reply[at + 1].integer(), -1); // -1: the key has no TTL
  info.waiters = std::max<std::int64_t>(reply[at + 2].integer(), 0);
  info.server_now_ms = std::max<std::int64_t>(reply[at + 3].integer(), 0);
  if (!held) return info;
  lock::HolderInfo& holder = info.holders.emplace_back();
  holder.remaining_ms = remaining_ms;
  holder.has_metadata = reply[at + 4].integer() == 1;
  info.handoff = reply[at + 5].integer() == 1;
  if (holder.has_metadata && reply.size() >= at + 15) meta_from(reply, at + 6, holder);
  return info;
}

namespace {

// What a hand-off value from release.lua or force_release.lua says:
// 'handoff:FENCE:NOW_MS:TICKET' (or 'handoff:FENCE:NOW_MS' from an rlock before the line kept
// arrival order). Other values (a 'recheck') say nothing.
std::optional<lock::Handoff> parse_handoff(std::string_view value) {
  constexpr std::string_view k_prefix = "handoff:";
  if (!value.starts_with(k_prefix)) return std::nullopt;
  value.remove_prefix(k_prefix.size());
  std::size_t colon = value.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view server_ms = value.substr(colon + 1);
  server_ms = server_ms.substr(0, server_ms.find(':'));
  lock::Handoff handoff;
  if (!parse_int(value.substr(0, colon), handoff.fence) || !parse_int(server_ms, handoff.server_ms)) {
    return std::nullopt;
  }
  handoff.ttl = lock::Millis(k_handoff_ttl_ms);
  return handoff;
}

Reply checked(Reply reply, std::string_view context) {
  if (reply.view().is_error()) throw_reply_error(reply.view(), context);
  return reply;
}

} // namespace

std::string KeySchema::lock(std::string_view name) const { return fmt::format("{}{{{}}}", m_prefix, name); }
std::string KeySchema::meta(std::string_view name) const { return lock(name) + ":meta"; }
std::string KeySchema::fence(std::string_view name) const { return lock(name) + ":fence"; }
std::string KeySchema::line(std::string_view name) const { return lock(name) + ":line"; }
std::string KeySchema::line_expiry(std::string_view name) const { return lock(name) + ":line:expiry"; }
std::string KeySchema::wake(std::string_view name) const { return lock(name) + ":wake"; }
std::string KeySchema::wake(std::string_view name, std::string_view ticket) const {
  return fmt::format("{}:{}", wake(name), ticket);
}

std::string KeySchema::watchers(std::string_view name) const { return lock(name) + ":watchers"; }
std::string KeySchema::log(std::string_view name) const { return lock(name) + ":log"; }
std::string KeySchema::permits(std::string_view name) const { return lock(name) + ":permits"; }
std::string KeySchema::limit(std::string_view name) const { return lock(name) + ":limit"; }

std::string KeySchema::scan_pattern(std::string_view glob) const {
  std::string pattern;
  for (char c : m_prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
    pattern += c;
  }
  // The name's glob goes between the braces as given: its own escapes are the user's.
  return fmt::format("{}{{{}}}", pattern, glob);
}

std::string KeySchema::name_of(std::string_view key) const {
  if (!key.starts_with(m_prefix)) return {};
  key.remove_prefix(m_prefix.size());
  if (key.size() < 3 || key.front() != '{' || key.back() != '}') return {};
  std::string_view name = key.substr(1, key.size() - 2);
  if (name.find_first_of("{}") != std::string_view::npos) return {};
  return std::string(name);
}

RedisLockStore::RedisLockStore(Topology& topology, std::string prefix)
    : m_topology(topology), m_keys(std::move(prefix)) {}

void RedisLockStore::set_audit(bool record, std::string actor) {
  m_audit = std::string(record ? 1 : 0, '1'); // "1" or ""
  m_actor = std::move(actor);
}

namespace {

// One entry of XRANGE's reply, {ID, {FIELD, VALUE, ...}}, as an AuditEntry.
AuditEntry audit_entry_from(ReplyView entry) {
  AuditEntry out;
  if (!entry.is_array() || entry.size() < 2 || !entry[0].is_string()) return out;
  out.id = std::string(entry[0].string());
  std::int64_t time_ms = 0;
  if (parse_int(std::string_view(out.id).substr(0, out.id.find('-')), time_ms)) {
    out.time_ms = time_ms >= k_min_unix_ms && time_ms <= k_max_unix_ms ? time_ms : 0;
  }
  ReplyView fields = entry[1];
  if (!fields.is_array()) return out;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (!fields[i].is_string()) continue;
    const std::string_view name = fields[i].string();
    ReplyView value = fields[i + 1];
    if (name == "event") {
      out.event = field(value);
    } else if (name == "token") {
      out.token = field(value);
    } else if (name == "host") {
      out.host = field(value);
    } else if (name == "pid") {
      out.pid = number(value, 1, k_max_pid);
    } else if (name == "user") {
      out.user = field(value);
    } else if (name == "fence") {
      out.fence = number(value, 1, k_max_int);
    } else if (name == "held_ms") {
      out.held_ms = number(value, 0, k_max_int, -1);
    } else if (name == "by") {
      out.by = field(value);
    }
  }
  return out;
}

} // namespace

std::vector<AuditEntry> RedisLockStore::read_log(std::string_view name, std::size_t count) {
  const std::string key = m_keys.log(name);
  const std::string count_text = std::to_string(count);
  const Deadline give_up_at = retry_budget();
  const std::string doing = fmt::format("reading {}", key);
  Retries retries;
  for (;;) {
    ErrorReply error;
    try {
      Reply reply = m_topology.node_for(key, give_up_at).command({"XREVRANGE", key, "+", "-", "COUNT", count_text});
      ReplyView view = reply.view();
      if (!view.is_error()) {
        std::vector<AuditEntry> entries;
        if (!view.is_array()) throw Error(ExitCode::internal, fmt::format("{}: XREVRANGE gave no list", doing));
        for (std::size_t i = view.size(); i > 0; --i) entries.push_back(audit_entry_from(view[i - 1]));
        return entries;
      }
      error = classify_error(view.string());
    } catch (const TransientReplyError& refused) {
      error = refused.reply(); // refused while logging in: nothing was sent
    }
    retry_or_throw(error, doing, give_up_at, retries);
  }
}

void RedisLockStore::require_replicas(std::int64_t count, lock::Millis timeout) {
  m_wait_count = std::to_string(std::max<std::int64_t>(count, 0));
  // WAIT's timeout 0 would mean forever.
  m_wait_timeout = std::max(timeout, lock::Millis(1));
  m_wait_timeout_ms = std::to_string(m_wait_timeout.count());
}

Args RedisLockStore::wait_command() const {
  if (m_wait_count == "0") return {};
  return {"WAIT", m_wait_count, m_wait_timeout_ms};
}

Deadline RedisLockStore::bounded(std::optional<lock::TimePoint> deadline) const {
  Deadline until = std::chrono::steady_clock::now() + m_topology.options().io_timeout;
  if (m_wait_count != "0") until += m_wait_timeout; // WAIT answers after up to its timeout
  return deadline ? std::min(until, *deadline) : until;
}

bool RedisLockStore::replicas_confirmed(std::string_view doing, std::optional<ErrorReply>& refused) {
  if (m_wait_count == "0") return true;
  std::optional<Reply> wait = std::move(m_wait_reply);
  m_wait_reply.reset();
  std::int64_t wanted = 0;
  (void)parse_int(m_wait_count, wanted);
  if (wait && wait->view().is_integer() && wait->view().integer() >= wanted) return true;
  if (wait && wait->view().is_integer()) {
    m_shortfall = fmt::format("only {} of {} replicas acknowledged {} within {} (--min-replicas {})",
                              wait->view().integer(), wanted, doing, format_duration(m_wait_timeout), wanted);
  } else if (wait && wait->view().is_error()) {
    ErrorReply error = classify_error(wait->view().string());
    m_shortfall =
        fmt::format("only 0 of {} replicas acknowledged {}: Redis refused WAIT: {}", wanted, doing, error.text);
    if (error.kind == ReplyClass::auth) refused = std::move(error);
  } else {
    m_shortfall = fmt::format("only 0 of {} replicas acknowledged {}: WAIT gave no count", wanted, doing);
  }
  return false;
}

AuthError RedisLockStore::wait_refused(const ErrorReply& refused, std::string_view doing) {
  return AuthError(fmt::format("Redis refused WAIT after {}: {}; --min-replicas needs it: add +wait to the ACL "
                               "user (see MINIMAL ACL in rlock(1))",
                               doing, refused.text));
}

Deadline RedisLockStore::retry_budget() const {
  return std::chrono::steady_clock::now() + m_topology.options().connect_timeout;
}

void RedisLockStore::pause_before_retry(std::chrono::milliseconds pause, Deadline deadline) {
  // Not woken by the interrupt fd: a renewal inside exec's supervisor must not end in
  // Interrupted, and the pause is short.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  std::this_thread::sleep_for(
      std::clamp(std::min(pause, left), std::chrono::milliseconds(0), std::chrono::milliseconds(500)));
}

void RedisLockStore::retry_or_throw(const ErrorReply& error, std::string_view context, Deadline give_up_at,
                                    Retries& retries) {
  if (topology_moved(error.kind)) m_topology.refresh(error);
  if (error.kind == ReplyClass::redirect) {
    if (++retries.redirects > k_max_redirects) {
      throw_error_reply(error, fmt::format("{} (redirected {} times in a row)", context, retries.redirects));
    }
    log::verbose("{}: {}; following it", context, error.text);
    return;
  }
  retries.redirects = 0; // a redirect led somewhere that answered: not a loop
  std::chrono::milliseconds& backoff = retries.backoff;
  if (!is_transient(error.kind) || std::chrono::steady_clock::now() + backoff >= give_up_at) {
    throw_error_reply(error, context);
  }
  log::verbose("{}: {}; asking again", context, error.text);
  pause_before_retry(backoff, give_up_at);
  backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
}

Reply RedisLockStore::run(const scripts::Script& script, const Args& keys, const Args& args, std::string_view context,
                          std::optional<Deadline> deadline) {
  Deadline give_up_at = deadline.value_or(retry_budget());
  Retries retries;
  for (;;) {
    ErrorReply error;
    try {
      Reply reply = m_topology.node_for(keys.front(), deadline.value_or(give_up_at)).eval(script, keys, args, deadline);
      if (!reply.view().is_error()) return reply;
      error = classify_error(reply.view().string());
    } catch (const TransientReplyError& refused) {
      error = refused.reply(); // refused while logging in: nothing was sent
    }
    retry_or_throw(error, context, give_up_at, retries);
  }
}

Reply RedisLockStore::receive_retrying(std::string_view context, Deadline give_up_at,
                                       const std::optional<Deadline>& read_by,
                                       const std::function<void()>& send_again) {
  Retries retries;
  for (;;) {
    Connection& node = *m_sent_node;
    m_sent_node = nullptr;
    std::pair<Reply, std::optional<Reply>> replies = node.receive_eval_then(read_by);
    Reply reply = std::move(replies.first);
    if (!reply.view().is_error()) {
      m_wait_reply = std::move(replies.second);
      return reply;
    }
    // An error reply: the script changed nothing (every script is all or nothing).
    ErrorReply error = classify_error(reply.view().string());
    retry_or_throw(error, context, give_up_at, retries);
    try {
      send_again();
    } catch (const TransientReplyError& refused) {
      throw_error_reply(refused.reply(), context);
    }
  }
}

void RedisLockStore::send_acquire(const lock::AcquireRequest& request) {
  std::string lock_key = m_keys.lock(request.name);
  std::string meta_key = m_keys.meta(request.name);
  std::string fence_key = m_keys.fence(request.name);
  std::string line_key = m_keys.line(request.name);
  std::string expiry_key = m_keys.line_expiry(request.name);
  std::string wake_key = m_keys.wake(request.name);
  std::string ttl = std::to_string(request.ttl.count());
  std::string pid = std::to_string(request.meta.pid);
  std::string host = meta_value(request.meta.host);
  std::string user = meta_value(request.meta.user);
  std::string command = meta_value(request.meta.command);
  std::string_view claim = request.ticket.empty() ? std::string_view() : std::string_view(m_claim);
  std::string_view supervised = request.supervised ? "1" : "0";
  const LineArgs& line = line_args();
  Connection& node = m_topology.node_for(lock_key, retry_budget());
  m_sent_node = nullptr;
  m_acquire_sent_at = std::chrono::steady_clock::now();
  if (request.limit || request.shared) {
    const std::string limit = std::to_string(request.shared ? 0 : *request.limit);
    node.send_eval(
        scripts::k_sem_acquire,
        {lock_key, m_keys.permits(request.name), fence_key, line_key, expiry_key, wake_key, m_keys.limit(request.name)},
        {request.token, ttl, host, pid, user, command, request.ticket, claim, supervised, limit, line[0], line[1],
         line[2], line[3], line[4]},
        std::nullopt, wait_command());
    m_sent_node = &node;
    if (&m_sent_request != &request) m_sent_request = request;
    m_sent_key = std::move(lock_key);
    return;
  }
  node.send_eval(scripts::k_acquire, {lock_key, meta_key, fence_key, line_key, expiry_key, wake_key},
                 {request.token, ttl, host, pid, user, command, request.ticket, claim, supervised, line[0], line[1],
                  line[2], line[3], line[4], m_audit},
                 std::nullopt, wait_command());
  m_sent_node = &node;
  if (&m_sent_request != &request) m_sent_request = request;
  m_sent_key = std::move(lock_key);
}

lock::AcquireResult RedisLockStore::receive_acquire(std::optional<lock::TimePoint> deadline) {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "receive_acquire without send_acquire");
  // An error reply that stays leaves the claim, if any: it was not tried.
  const std::string doing = fmt::format("acquiring {}", m_sent_key);
  std::optional<Deadline> read_by = deadline;
  if (!read_by && m_wait_count != "0") read_by = bounded(std::nullopt);
  Reply reply =
      receive_retrying(doing, deadline.value_or(retry_budget()), read_by, [this] { send_acquire(m_sent_request); });
  // Answered: a claim either took the lock or found the hand-off gone; either way it is spent.
  m_claim.clear();
  ReplyView view = reply.view();
  lock::AcquireResult result;
  result.sent_at = m_acquire_sent_at; // the attempt answered, after any retries here
  const bool permit = m_sent_request.limit || m_sent_request.shared;
  if (view[0].integer() == -2) {
    // Another kind holds or waits for the name (sem_acquire.lua, acquire.lua).
    std::string stored = field(view[1]);
    std::string given = m_sent_request.shared ? "shared" : std::to_string(m_sent_request.limit.value_or(1));
    auto describe = [](const std::string& kind) {
      if (kind == "1") return std::string("1 (a mutex)");
      if (kind == "shared") return std::string("shared (readers and writers)");
      return kind;
    };
    throw ConfigError(fmt::format("limit conflict: stored {}, given {}, on lock '{}': its holders or waiters use it "
                                  "as another kind; use the same --limit (or none) as they do, or another name",
                                  describe(stored), describe(given), printable(m_sent_request.name)));
  }
  if (view[0].integer() == 1) {
    std::optional<ErrorReply> refused;
    if (!replicas_confirmed(doing, refused)) {
      // A failover now could lose the lock: give it back before anyone relies on it.
      log::verbose("{}; giving it back", m_shortfall);
      if (permit) {
        release_permit(m_sent_request.name, m_sent_request.token, deadline);
      } else {
        LetGoArgs let_go(m_keys, m_sent_request.name);
        run(scripts::k_release, let_go.key_args(), let_go.args({m_sent_request.token, "0"}, {m_audit}),
            fmt::format("giving back {}", m_sent_key), bounded(deadline));
      }
      if (refused) throw wait_refused(*refused, doing);
      result.unconfirmed = m_shortfall + "; the lock was given back";
      return result;
    }
    result.acquired = true;
    result.fence = view[1].integer();
    if (permit && !is_permit(m_sent_request.token)) m_permit_tokens.push_back(m_sent_request.token);
  } else {
    result.lock = holder_from(view, 2);
    result.lock.place = number(view[1], 0, k_max_int, -1);
  }
  return result;
}

void RedisLockStore::send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) {
  std::string lock_key = m_keys.lock(request.name);
  std::string meta_key = m_keys.meta(request.name);
  std::string ttl_text = std::to_string(request.ttl.count());
  std::string keeper = std::to_string(request.keeper_pid);
  const Deadline by = bounded(deadline);
  Connection& node = m_topology.node_for(lock_key, by);
  m_sent_node = nullptr;
  m_sent_permit = is_permit(request.token);
  if (m_sent_permit) {
    node.send_eval(scripts::k_sem_renew, {lock_key, m_keys.permits(request.name), m_keys.limit(request.name)},
                   {request.token, ttl_text, keeper}, by, wait_command());
  } else {
    node.send_eval(scripts::k_renew, {lock_key, meta_key}, {request.token, ttl_text, keeper}, by, wait_command());
  }
  m_sent_node = &node;
  if (&m_sent_renew != &request) m_sent_renew = request;
  m_sent_key = std::move(lock_key);
}

lock::TokenCheck RedisLockStore::receive_renew(std::optional<lock::TimePoint> deadline) {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "receive_renew without send_renew");
  const Deadline give_up_at = bounded(deadline);
  const std::string doing = fmt::format("renewing {}", m_sent_key);
  Reply reply =
      receive_retrying(doing, give_up_at, give_up_at, [this, give_up_at] { send_renew(m_sent_renew, give_up_at); });
  if (!m_sent_permit && reply.view().integer() == -1) {
    // The name is held by another value: maybe permits (a semaphore, readers), one of them
    // this token's.
    if (renew_permit(m_sent_renew, deadline) == lock::TokenCheck::ok) return lock::TokenCheck::ok;
    return lock::TokenCheck::taken;
  }
  switch (reply.view().integer()) {
  case 1:
  case 2: { // 2: a supervised lease kept longer than asked
    std::optional<ErrorReply> refused;
    if (replicas_confirmed(doing, refused)) return lock::TokenCheck::ok;
    if (refused) throw wait_refused(*refused, doing);
    log::verbose("{}", m_shortfall);
    // The node may have been deposed (a master whose replicas went to another): look again.
    ErrorReply reason;
    reason.text = m_shortfall;
    m_topology.refresh(reason);
    return lock::TokenCheck::unconfirmed;
  }
  case 0: return lock::TokenCheck::free;
  default: return lock::TokenCheck::taken;
  }
}

bool RedisLockStore::is_permit(std::string_view token) const {
  return std::find(m_permit_tokens.begin(), m_permit_tokens.end(), token) != m_permit_tokens.end();
}

lock::TokenCheck RedisLockStore::renew_permit(const lock::RenewRequest& request,
                                              std::optional<lock::TimePoint> deadline) {
  std::string lock_key = m_keys.lock(request.name);
  const std::string ttl_text = std::to_string(request.ttl.count());
  const std::string keeper = std::to_string(request.keeper_pid);
  Reply reply = run(scripts::k_sem_renew, {lock_key, m_keys.permits(request.name), m_keys.limit(request.name)},
                    {request.token, ttl_text, keeper}, fmt::format("renewing {}", lock_key), bounded(deadline));
  // A lone permit gone: nothing changed. (No WAIT here: --min-replicas renews permits taken
  // by this store, which go through send_renew.)
  return reply.view().integer() == 0 ? lock::TokenCheck::free : lock::TokenCheck::ok;
}

lock::ReleaseResult RedisLockStore::release_permit(std::string_view name, std::string_view token,
                                                   std::optional<lock::TimePoint> deadline) {
  LetGoArgs let_go(m_keys, name);
  const std::string handoff_ttl = std::to_string(k_handoff_ttl_ms);
  const LineArgs& line = line_args();
  Reply reply = run(scripts::k_sem_release,
                    {let_go.keys[0], m_keys.permits(name), m_keys.fence(name), m_keys.line(name),
                     m_keys.line_expiry(name), m_keys.wake(name), m_keys.limit(name), m_keys.watchers(name)},
                    {token, handoff_ttl, line[0], line[1], line[2], line[3], line[4]},
                    fmt::format("releasing {}", let_go.keys[0]), bounded(deadline));
  ReplyView view = reply.view();
  lock::ReleaseResult result;
  if (view[0].integer() != 1) return result; // free: the permit was gone
  result.outcome = lock::TokenCheck::ok;
  result.keeper_pid = view.size() > 2 ? number(view[2], 1, k_max_pid) : 0;
  result.keeper_host = view.size() > 3 ? field(view[3]) : std::string();
  std::erase(m_permit_tokens, std::string(token));
  return result;
}

void RedisLockStore::send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                                  std::optional<lock::TimePoint> deadline) {
  LetGoArgs let_go(m_keys, name);
  std::string lock_key = let_go.keys[0];
  std::string min_hold_text = std::to_string(min_hold.count());
  const Deadline by = bounded(deadline);
  Connection& node = m_topology.node_for(lock_key, by);
  m_sent_node = nullptr;
  m_sent_permit = is_permit(token);
  if (m_sent_permit) {
    const std::string handoff_ttl = std::to_string(k_handoff_ttl_ms);
    const LineArgs& line = line_args();
    node.send_eval(scripts::k_sem_release,
                   {lock_key, m_keys.permits(name), m_keys.fence(name), m_keys.line(name), m_keys.line_expiry(name),
                    m_keys.wake(name), m_keys.limit(name), m_keys.watchers(name)},
                   {token, handoff_ttl, line[0], line[1], line[2], line[3], line[4]}, by, wait_command());
  } else {
    node.send_eval(scripts::k_release, let_go.key_args(), let_go.args({token, min_hold_text}, {m_audit}), by,
                   wait_command());
  }
  m_sent_node = &node;
  m_sent_release = SentRelease{std::string(name), std::string(token), min_hold};
  m_sent_key = std::move(lock_key);
}

lock::ReleaseResult RedisLockStore::receive_release(std::optional<lock::TimePoint> deadline) {
  if (m_sent_node == nullptr || !m_sent_release)
    throw Error(ExitCode::internal, "receive_release without send_release");
  const Deadline give_up_at = deadline.value_or(retry_budget());
  std::optional<Deadline> read_by = bounded(deadline);
  const std::string doing = fmt::format("releasing {}", m_sent_key);
  Reply reply = receive_retrying(doing, give_up_at, read_by, [&] {
    SentRelease again = *m_sent_release;
    send_release(again.name, again.token, again.min_hold, give_up_at);
    read_by = bounded(give_up_at);
  });
  ReplyView view = reply.view();
  if (!m_sent_permit && view[0].integer() == -1) {
    // The name is held by another value: maybe permits (a semaphore, readers), one of them
    // this token's.
    SentRelease sent = *m_sent_release;
    lock::ReleaseResult permit = release_permit(sent.name, sent.token, deadline);
    if (permit.outcome != lock::TokenCheck::ok) permit.outcome = lock::TokenCheck::taken;
    return permit;
  }
  if (m_sent_permit && view[0].integer() == 1) std::erase(m_permit_tokens, m_sent_release->token);
  lock::ReleaseResult result;
  switch (view[0].integer()) {
  case 1: {
    // Released on the node; a failover before the replicas saw it could bring the lock back
    // until its lease ends, which is all an unacknowledged release risks: say so, no more.
    std::optional<ErrorReply> refused;
    if (!replicas_confirmed(doing, refused)) {
      if (refused) {
        log::warn("{}", wait_refused(*refused, doing).what());
      } else {
        log::verbose("{}", m_shortfall);
      }
    }
    result.outcome = lock::TokenCheck::ok;
    result.kept_for = lock::Millis(view[1].integer());
    result.keeper_pid = view.size() > 2 ? number(view[2], 1, k_max_pid) : 0;
    result.keeper_host = view.size() > 3 ? field(view[3]) : std::string();
    break;
  }
  case 0: result.outcome = lock::TokenCheck::free; break;
  default: result.outcome = lock::TokenCheck::taken; break;
  }
  return result;
}

lock::ForceResult RedisLockStore::force_release(std::string_view name, const lock::ForceCondition& only) {
  // force_release.lua breaks the lock key, which for permits is only their marker: it would
  // let foreign clients in beside live permits and hand the name to a waiter as a mutex.
  if (const lock::LockInfo held = inspect(name); held.kind != lock::LockKind::mutex) {
    throw UsageError(fmt::format("release --force does not break a {} ('{}'): its permits lapse with their "
                                 "leases; release a holder with its token (rlock status shows them)",
                                 held.kind == lock::LockKind::shared ? "shared lock" : "semaphore", printable(name)));
  }
  LetGoArgs let_go(m_keys, name);
  const std::string pid = std::to_string(only.pid); // Args views it
  Args first{"", "", ""};
  if (!only.token.empty()) {
    first = {"token", only.token, ""};
  } else if (!only.host.empty()) {
    first = {"holder", only.host, pid};
  }
  Reply reply = run(scripts::k_force_release, let_go.key_args(), let_go.args(std::move(first), {m_audit, m_actor}),
                    fmt::format("force-releasing {}", let_go.keys[0]), std::nullopt);
  lock::ForceResult result;
  const std::int64_t outcome = reply.view()[0].integer();
  result.outcome = outcome == 1   ? lock::ForceResult::Outcome::broken
                   : outcome == 0 ? lock::ForceResult::Outcome::free
                                  : lock::ForceResult::Outcome::other_holder;
  result.lock = holder_from(reply.view(), 1);
  return result;
}

lock::LockInfo RedisLockStore::inspect(std::string_view name) {
  std::string lock_key = m_keys.lock(name);
  std::string meta_key = m_keys.meta(name);
  std::string expiry_key = m_keys.line_expiry(name);
  Reply reply = run(scripts::k_inspect, {lock_key, meta_key, expiry_key}, {}, fmt::format("inspecting {}", lock_key),
                    std::nullopt);
  return holder_from(reply.view(), 0);
}

std::vector<lock::LockInfo> RedisLockStore::inspect_many(std::span<const std::string> names) {
  std::vector<lock::LockInfo> infos(names.size());
  if (names.empty()) return infos;
  // The names still to read, as indexes into `names`; each pass reads those of one node.
  std::vector<std::size_t> pending(names.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  const Deadline give_up_at = retry_budget();
  Retries retries;
  std::vector<std::string> keys; // lock, meta, line_expiry of each name read in this pass
  std::vector<Args> commands;
  bool sent_text = false; // the script's text went to the server with EVAL
  while (!pending.empty()) {
    Connection& node = m_topology.node_for(m_keys.lock(names[pending.front()]), give_up_at);
    std::vector<std::size_t> here;
    std::vector<std::size_t> again; // for a later pass: another node's, or asked again
    keys.clear();
    for (std::size_t index : pending) {
      std::string lock_key = m_keys.lock(names[index]);
      if (&m_topology.node_for(lock_key, give_up_at) != &node) {
        again.push_back(index);
        continue;
      }
      here.push_back(index);
      keys.push_back(std::move(lock_key));
      keys.push_back(m_keys.meta(names[index]));
      keys.push_back(m_keys.line_expiry(names[index]));
    }
    commands.clear();
    for (std::size_t i = 0; i < here.size(); ++i) {
      commands.push_back({"EVALSHA", scripts::k_inspect.sha1, "3", keys[3 * i], keys[3 * i + 1], keys[3 * i + 2]});
    }
    std::vector<Reply> replies;
    std::optional<ErrorReply> error;
    std::string error_key = keys.front();
    try {
      replies = node.pipeline(commands);
    } catch (const TransientReplyError& refused) {
      error = refused.reply(); // refused while logging in: nothing was sent
      again.insert(again.end(), here.begin(), here.end());
    }
    std::optional<std::size_t> uncached; // a name whose script the server did not have
    for (std::size_t i = 0; i < replies.size(); ++i) {
      ReplyView view = replies[i].view();
      if (!view.is_error()) {
        infos[here[i]] = holder_from(view, 0);
        continue;
      }
      again.push_back(here[i]);
      ErrorReply reply_error = classify_error(view.string());
      if (reply_error.kind == ReplyClass::script_missing) {
        if (!uncached) uncached = here[i];
      } else if (!error) {
        error = std::move(reply_error);
        error_key = keys[3 * i];
      }
    }
    if (error) {
      retry_or_throw(*error, fmt::format("inspecting {}", error_key), give_up_at, retries);
    } else if (uncached && !sent_text) {
      // Not cached on this server (first use, SCRIPT FLUSH, a restart): one inspect() sends
      // the script's text with EVAL, which caches it for the others.
      sent_text = true;
      infos[*uncached] = inspect(names[*uncached]);
      std::erase(again, *uncached);
    } else if (uncached) {
      // Still not cached (a proxy that drops the cache?): one at a time, each with its text.
      for (std::size_t index : again) infos[index] = inspect(names[index]);
      again.clear();
    }
    pending = std::move(again);
  }
  return infos;
}

Connection* RedisLockStore::send_inspects(std::span<const std::string> names) {
  if (names.empty()) return nullptr;
  const Deadline by = retry_budget();
  Connection& node = m_topology.node_for(m_keys.lock(names.front()), by);
  std::vector<std::string> keys;
  keys.reserve(3 * names.size());
  for (const std::string& name : names) {
    keys.push_back(m_keys.lock(name));
    if (&m_topology.node_for(keys.back(), by) != &node) return nullptr;
    keys.push_back(m_keys.meta(name));
    keys.push_back(m_keys.line_expiry(name));
  }
  std::vector<Args> commands;
  commands.reserve(names.size());
  for (std::size_t i = 0; i < keys.size(); i += 3) {
    commands.push_back({"EVALSHA", scripts::k_inspect.sha1, "3", keys[i], keys[i + 1], keys[i + 2]});
  }
  node.send_pipeline(commands);
  return &node;
}

std::vector<lock::LockInfo> RedisLockStore::receive_inspects(Connection& node, std::span<const std::string> names) {
  std::vector<Reply> replies = node.receive_pipeline();
  std::vector<lock::LockInfo> infos;
  infos.reserve(names.size());
  for (const Reply& reply : replies) {
    if (reply.view().is_error()) return inspect_many(names); // the scripts only read
    infos.push_back(holder_from(reply.view(), 0));
  }
  if (infos.size() != names.size()) throw Error(ExitCode::internal, "a pipeline's replies went missing");
  return infos;
}

void RedisLockStore::inspect_batches(std::span<const std::string> names, std::size_t batch, const BatchVisitor& visit) {
  auto take = [&names, batch] {
    std::span<const std::string> part = names.first(std::min(names.size(), batch));
    names = names.subspan(part.size());
    return part;
  };
  std::span<const std::string> current = take();
  Connection* ahead = send_inspects(current);
  while (!current.empty()) {
    std::vector<lock::LockInfo> infos = ahead ? receive_inspects(*ahead, current) : inspect_many(current);
    std::span<const std::string> next = take();
    ahead = send_inspects(next);
    bool more = false;
    try {
      more = visit(current, infos);
    } catch (...) {
      if (ahead) ahead->disconnect(); // its replies are not wanted now
      throw;
    }
    if (!more) {
      if (ahead) ahead->disconnect();
      return;
    }
    current = next;
  }
}

std::vector<std::string> RedisLockStore::list_names(std::string_view glob) {
  std::vector<std::string> names;
  std::string pattern = m_keys.scan_pattern(glob);
  m_topology.each_primary([&](Connection& node) {
    std::string cursor = "0";
    do {
      Reply reply = checked(node.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}), "listing locks");
      ReplyView view = reply.view();
      cursor = std::string(view[0].string());
      ReplyView keys = view[1];
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!keys[i].is_string()) continue;
        std::string name = m_keys.name_of(keys[i].string());
        if (!name.empty()) names.push_back(std::move(name));
      }
    } while (cursor != "0");
  });
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::optional<std::string> RedisLockStore::pop_wake(std::string_view name, std::string_view ticket,
                                                    lock::Millis timeout, int interrupt_fd) {
  std::string wake_key = m_keys.wake(name, ticket);
  Connection& node = m_topology.node_for(wake_key, retry_budget());
  // BLPOP takes seconds with a fractional part; 0 would mean forever, so never send it.
  double seconds = std::max<double>(static_cast<double>(timeout.count()) / 1000.0, 0.001);
  std::string timeout_text = fmt::format("{:.3f}", seconds);
  Deadline until = std::chrono::steady_clock::now() + timeout + node.io_timeout();
  Reply reply = node.command({"BLPOP", wake_key, timeout_text}, until, interrupt_fd);
  if (reply.view().is_error()) {
    ErrorReply error = classify_error(reply.view().string());
    if (topology_moved(error.kind)) m_topology.refresh(error);
    throw_error_reply(error, fmt::format("waiting on {}", wake_key));
  }
  if (reply.view().is_nil()) return std::nullopt;
  ReplyView popped = reply.view()[1];
  return popped.is_string() ? std::string(popped.string()) : std::string();
}

// Each waiter blocks on its own list: a release pushes the hand-off to the first ticket in
// line (line.lua), whatever order the waiters blocked in.
bool RedisLockStore::wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                   int interrupt_fd) {
  m_claim.clear();
  std::optional<std::string> popped = pop_wake(name, ticket, timeout, interrupt_fd);
  if (!popped) return false;
  m_claim = std::move(*popped);
  return true;
}

// How long a watcher's registration counts (watch.lua): past the longest it sleeps before
// looking again (lock::k_max_fallback), with the first waiter's slack.
constexpr lock::Millis k_watch_registration = lock::k_max_fallback + lock::k_line.head_slack;

lock::LockInfo RedisLockStore::watch(std::string_view name, std::string_view ticket) {
  std::string lock_key = m_keys.lock(name);
  const std::string registration = std::to_string(k_watch_registration.count());
  Reply reply = run(scripts::k_watch,
                    {lock_key, m_keys.meta(name), m_keys.line_expiry(name), m_keys.watchers(name), m_keys.wake(name)},
                    {ticket, registration}, fmt::format("watching {}", lock_key), std::nullopt);
  return holder_from(reply.view(), 1);
}

// A watcher's list gets 'free' from a release that freed the lock, 'recheck' from one that
// shortened it (watchers.lua).
lock::WatchWake RedisLockStore::wait_for_release(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                                 int interrupt_fd) {
  std::optional<std::string> popped = pop_wake(name, ticket, timeout, interrupt_fd);
  if (!popped) return lock::WatchWake::timeout;
  return *popped == "free" ? lock::WatchWake::freed : lock::WatchWake::recheck;
}

std::optional<lock::Handoff> RedisLockStore::handoff() const {
  // With --min-replicas a job waits for its claim's confirmed answer.
  if (m_claim.empty() || m_wait_count != "0") return std::nullopt;
  return parse_handoff(m_claim);
}

void RedisLockStore::leave_queue(std::string_view name, std::string_view ticket) {
  LetGoArgs let_go(m_keys, name);
  if ((m_sent_request.limit || m_sent_request.shared) && m_sent_request.name == name) {
    // A waiter for a permit: a reservation made for it is passed on (sem_leave.lua).
    const LineArgs& line = line_args();
    run(scripts::k_sem_leave,
        {let_go.keys[0], m_keys.permits(name), m_keys.fence(name), m_keys.line(name), m_keys.line_expiry(name),
         m_keys.wake(name), m_keys.limit(name), m_keys.watchers(name)},
        {ticket, let_go.handoff_ttl, line[0], line[1], line[2], line[3], line[4]}, "leaving the waiting line",
        std::nullopt);
    return;
  }
  run(scripts::k_leave, let_go.key_args(), let_go.args({ticket}), "leaving the waiting line", std::nullopt);
}

void RedisLockStore::send_confirm_fence(std::string_view name, std::string_view token, std::int64_t fence,
                                        lock::TimePoint deadline) {
  std::string lock_key = m_keys.lock(name);
  std::string meta_key = m_keys.meta(name);
  std::string fence_key = m_keys.fence(name);
  std::string fence_text = std::to_string(fence);
  Connection& node = m_topology.node_for(lock_key, deadline);
  m_sent_node = nullptr;
  node.send_eval(scripts::k_fence_confirm, {lock_key, meta_key, fence_key}, {token, fence_text}, deadline);
  m_sent_node = &node;
  m_sent_key = std::move(lock_key);
}

bool RedisLockStore::receive_confirm_fence(lock::TimePoint deadline) {
  return receive_quorum_step(deadline).view().integer() == 1;
}

void RedisLockStore::send_restore(std::string_view name, std::string_view token, lock::Millis ttl,
                                  lock::TimePoint deadline) {
  std::string lock_key = m_keys.lock(name);
  std::string ttl_text = std::to_string(ttl.count());
  Connection& node = m_topology.node_for(lock_key, deadline);
  m_sent_node = nullptr;
  node.send_eval(scripts::k_restore, {lock_key}, {token, ttl_text}, deadline);
  m_sent_node = &node;
  m_sent_key = std::move(lock_key);
}

bool RedisLockStore::receive_restore(lock::TimePoint deadline) {
  return receive_quorum_step(deadline).view().integer() == 1;
}

void RedisLockStore::send_read_token(std::string_view name, lock::TimePoint deadline) {
  std::string lock_key = m_keys.lock(name);
  Connection& node = m_topology.node_for(lock_key, deadline);
  m_sent_node = nullptr;
  node.send_pipeline({{"GET", lock_key}}, deadline);
  m_sent_node = &node;
  m_sent_key = std::move(lock_key);
}

std::optional<std::string> RedisLockStore::receive_read_token(lock::TimePoint deadline) {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "receive_read_token without send_read_token");
  Connection& node = *m_sent_node;
  m_sent_node = nullptr;
  std::vector<Reply> replies = node.receive_pipeline(deadline);
  ReplyView view = replies.at(0).view();
  if (view.is_error()) throw_error_reply(classify_error(view.string()), fmt::format("reading {}", m_sent_key));
  if (view.is_nil()) return std::nullopt;
  return std::string(view.string());
}

void RedisLockStore::send_watch(std::string_view name, std::string_view ticket, lock::Millis registration,
                                lock::TimePoint deadline) {
  std::string lock_key = m_keys.lock(name);
  const std::string registration_ms = std::to_string(registration.count());
  Connection& node = m_topology.node_for(lock_key, deadline);
  m_sent_node = nullptr;
  node.send_eval(scripts::k_watch,
                 {lock_key, m_keys.meta(name), m_keys.line_expiry(name), m_keys.watchers(name), m_keys.wake(name)},
                 {ticket, registration_ms}, deadline);
  m_sent_node = &node;
  m_sent_key = std::move(lock_key);
}

RedisLockStore::Watched RedisLockStore::receive_watch(lock::TimePoint deadline) {
  Reply reply = receive_quorum_step(deadline);
  Watched watched;
  watched.lock = holder_from(reply.view(), 1);
  watched.value = field(reply.view()[0]);
  return watched;
}

namespace {

// What a watcher's list said (watchers.lua): 'free' from a release that freed the lock,
// 'recheck' from one that shortened it; nil when the BLPOP timed out.
lock::WatchWake wake_from(ReplyView reply, std::string_view context) {
  if (reply.is_error()) throw_error_reply(classify_error(reply.string()), context);
  if (reply.is_nil()) return lock::WatchWake::timeout;
  ReplyView popped = reply[1];
  return popped.is_string() && popped.string() == "free" ? lock::WatchWake::freed : lock::WatchWake::recheck;
}

} // namespace

void RedisLockStore::send_wait_for_release(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                           lock::TimePoint deadline) {
  std::string wake_key = m_keys.wake(name, ticket);
  // BLPOP takes seconds with a fractional part; 0 would mean forever, so never send it.
  double seconds = std::max<double>(static_cast<double>(timeout.count()) / 1000.0, 0.001);
  std::string timeout_text = fmt::format("{:.3f}", seconds);
  Connection& node = m_topology.node_for(wake_key, deadline);
  m_sent_node = nullptr;
  node.send_pipeline({{"BLPOP", wake_key, timeout_text}}, deadline);
  m_sent_node = &node;
  m_sent_key = std::move(wake_key);
}

int RedisLockStore::wake_fd() const noexcept { return m_sent_node ? m_sent_node->fd() : -1; }

short RedisLockStore::wake_events() const noexcept { return m_sent_node ? m_sent_node->wait_events() : 0; }

std::optional<lock::WatchWake> RedisLockStore::poll_wait_for_release() {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "poll_wait_for_release without send_wait_for_release");
  std::optional<std::vector<Reply>> replies;
  try {
    replies = m_sent_node->receive_pipeline_ready();
  } catch (...) {
    m_sent_node = nullptr;
    throw;
  }
  if (!replies) return std::nullopt;
  m_sent_node = nullptr;
  return wake_from(replies->at(0).view(), fmt::format("waiting on {}", m_sent_key));
}

lock::WatchWake RedisLockStore::receive_wait_for_release(lock::TimePoint deadline) {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "receive_wait_for_release without send_wait_for_release");
  Connection& node = *m_sent_node;
  m_sent_node = nullptr;
  std::vector<Reply> replies = node.receive_pipeline(deadline);
  return wake_from(replies.at(0).view(), fmt::format("waiting on {}", m_sent_key));
}

Reply RedisLockStore::receive_quorum_step(lock::TimePoint deadline) {
  if (m_sent_node == nullptr) throw Error(ExitCode::internal, "receive without send");
  Connection& node = *m_sent_node;
  m_sent_node = nullptr;
  Reply reply = node.receive_eval(deadline);
  if (reply.view().is_error()) throw_error_reply(classify_error(reply.view().string()), m_sent_key);
  return reply;
}

} // namespace rlock::redis
