// SPDX-License-Identifier: MIT
// QuorumLockStore: Redlock across independent masters, with two-phase fences.
//
// Design. Every step goes out to all nodes before any answer is read (the send halves of
// RedisLockStore), then each answer is read by one deadline for the step: a stopped or slow
// node costs the step at most --node-timeout, not one timeout per node, and no thread is needed.
// Connecting works the same way: before a step's sends, every node not connected (the first
// time, or again after it stopped answering) is connected to and logged in at once, in one
// poll(2) (Connection::connect_all), each within min(--connect-timeout, --node-timeout).
// An acquire counts only when a majority granted it within the validity time measured from the
// first send (the lease layer measures its safety deadline from that same instant), and a failed
// one is released on every node, not just the ones that said yes: a node whose answer was lost
// may have granted it too.
// Fences: the maximum of the nodes' grants is not monotone by itself (docs/quorum.md has the
// three-node counterexample); written back to a majority that still holds our token, it is:
// any later majority shares a node whose counter is already at least this fence, and that
// node's next grant is larger.
// Waiting: the nodes' waiting lines and hand-offs are per node and could disagree on who is
// first, so a quorum waiter joins none. After a busy attempt it registers as a watcher on every
// node (watch.lua, what `rlock wait` uses on one node: it looks and registers in one step, so a
// release after the look is never missed) and blocks on all of them at once, a BLPOP on each
// node's connection and one poll(2) over their sockets (block_on). A release that frees the key
// on a node, whether the holder's or a failed attempt's clean-up, pushes a wake there
// (watchers.lua); the first wake from any node ends the wait and the waiter tries the quorum
// again. A lease that ends unreleased pushes nothing: the caller's timer at the lease's end
// covers it, and a fallback of k_quorum_fallback plus jitter covers wakes lost with a node (a
// restart, a dropped connection). No order among waiters: each release wakes them all and the
// first attempt to reach a majority wins (docs/quorum.md says what that does and does not
// promise).
#include "redis/quorum_lock_store.hpp"

#include "lock/lease.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <map>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace rlock::redis {

QuorumLockStore::QuorumLockStore(const std::vector<ConnectOptions>& nodes, const std::string& prefix,
                                 lock::Millis node_timeout)
    : m_node_timeout(node_timeout) {
  m_nodes.reserve(nodes.size());
  for (const ConnectOptions& given : nodes) {
    ConnectOptions options = given;
    options.connect_timeout = std::min(options.connect_timeout, node_timeout);
    options.io_timeout = node_timeout;
    Node node;
    node.label = options.endpoint.redacted();
    node.topology = std::make_unique<SingleNode>(std::move(options));
    node.store = std::make_unique<RedisLockStore>(*node.topology, prefix);
    m_nodes.push_back(std::move(node));
  }
}

lock::TimePoint QuorumLockStore::step_deadline(std::optional<lock::TimePoint> limit) const {
  lock::TimePoint until = std::chrono::steady_clock::now() + m_node_timeout;
  return limit ? std::min(until, *limit) : until;
}

lock::TimePoint QuorumLockStore::node_deadline(lock::TimePoint read_by, std::optional<lock::TimePoint> limit) const {
  // Nodes are read one after the other: one that answers after a stuck one still gets a
  // quarter of the node timeout (an EVALSHA the node did not have cached takes a second round
  // trip). A step thus lasts at most node_timeout plus a quarter of it per further stuck node.
  lock::TimePoint grace = std::chrono::steady_clock::now() + m_node_timeout / 4;
  if (limit) grace = std::min(grace, *limit);
  return std::max(read_by, grace);
}

void QuorumLockStore::connect_nodes(lock::TimePoint by) {
  std::vector<Connection*> connections;
  connections.reserve(m_nodes.size());
  for (Node& node : m_nodes) connections.push_back(&node.topology->node_for({}, by));
  Connection::connect_all(connections, by);
}

std::string QuorumLockStore::failed_nodes() const {
  std::string out;
  for (const Node& node : m_nodes) {
    if (node.error.empty()) continue;
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", node.label, node.error);
  }
  return out;
}

void QuorumLockStore::send_acquire(const lock::AcquireRequest& request) {
  m_sent_request = request;
  m_sent_request.ticket.clear(); // no waiting line: see the design note
  m_sent_at = std::chrono::steady_clock::now();
  connect_nodes(step_deadline(std::nullopt));
  send_to_all([&](RedisLockStore& store) { store.send_acquire(m_sent_request); });
}

lock::AcquireResult QuorumLockStore::receive_acquire(std::optional<lock::TimePoint> deadline) {
  // From the end of the sends: the nodes that had to be connected to first (one that stopped
  // answering was disconnected) may have spent up to a connect timeout in send_acquire.
  const lock::TimePoint read_by = step_deadline(deadline);
  const lock::Millis ttl = m_sent_request.ttl;
  std::vector<std::size_t> granted;
  std::vector<std::int64_t> fences;
  std::optional<lock::LockInfo> busy;
  std::size_t answered = 0;
  for (std::size_t i = 0; i < m_nodes.size(); ++i) {
    Node& node = m_nodes[i];
    if (!node.in_flight) continue;
    node.in_flight = false;
    try {
      lock::AcquireResult result = node.store->receive_acquire(node_deadline(read_by, deadline));
      ++answered;
      if (result.acquired) {
        granted.push_back(i);
        fences.push_back(result.fence);
      } else if (!busy || (!busy->held() && result.lock.held())) {
        busy = std::move(result.lock);
      }
    } catch (const Error& error) {
      node.error = error.what();
    }
  }
  const auto valid = [&] { return std::chrono::steady_clock::now() < m_sent_at + ttl - lock::safety_margin(ttl); };
  lock::AcquireResult result;
  if (granted.size() >= quorum() && valid()) {
    // Phase two: the maximum back to the nodes that granted it, under their token check.
    const std::int64_t fence = *std::max_element(fences.begin(), fences.end());
    const lock::TimePoint confirm_by = step_deadline(m_sent_at + ttl - lock::safety_margin(ttl));
    for (std::size_t i : granted) {
      m_nodes[i].send([&](RedisLockStore& store) {
        store.send_confirm_fence(m_sent_request.name, m_sent_request.token, fence, confirm_by);
      });
    }
    std::size_t confirmed = 0;
    for (std::size_t i : granted) {
      Node& node = m_nodes[i];
      if (!node.in_flight) continue;
      node.in_flight = false;
      try {
        if (node.store->receive_confirm_fence(node_deadline(confirm_by, m_sent_at + ttl - lock::safety_margin(ttl)))) {
          ++confirmed;
        } else {
          node.error = "the lock was gone before its fence was confirmed";
        }
      } catch (const Error& error) {
        node.error = error.what();
      }
    }
    if (confirmed >= quorum() && valid()) {
      log::verbose("acquired on {} of {} nodes, fence {} confirmed on {}", granted.size(), m_nodes.size(), fence,
                   confirmed);
      result.acquired = true;
      result.fence = fence;
      return result;
    }
    release_everywhere(m_sent_request.name, m_sent_request.token);
    result.unconfirmed = fmt::format("lock '{}': granted by {} of {} nodes but its fence confirmed by only {} in "
                                     "time (a majority is {}){}{}; the lock was given back",
                                     printable(m_sent_request.name), granted.size(), m_nodes.size(), confirmed,
                                     quorum(), failed_nodes().empty() ? "" : ": ", failed_nodes());
    return result;
  }
  // Not taken: give back what was granted, and what a lost answer may have granted.
  if (!granted.empty() || answered < m_nodes.size()) {
    std::string why = failed_nodes();
    release_everywhere(m_sent_request.name, m_sent_request.token);
    for (Node& node : m_nodes) node.error.clear();
    if (answered < quorum()) {
      throw UnavailableError(fmt::format("only {} of {} nodes answered within {} ms (a majority is {}): {}", answered,
                                         m_nodes.size(), m_node_timeout.count(), quorum(), why));
    }
    if (granted.size() >= quorum()) {
      result.unconfirmed = fmt::format("lock '{}': granted by {} of {} nodes, but too late to be valid (its TTL is "
                                       "{} ms); the lock was given back",
                                       printable(m_sent_request.name), granted.size(), m_nodes.size(), ttl.count());
      return result;
    }
  }
  // Busy on a majority (or split between contenders): who holds it, as a busy node said.
  if (busy) result.lock = std::move(*busy);
  return result;
}

void QuorumLockStore::release_everywhere(std::string_view name, std::string_view token) {
  const lock::TimePoint by = step_deadline(std::nullopt);
  connect_nodes(by);
  for (Node& node : m_nodes) {
    node.in_flight = false;
    try {
      node.store->send_release(name, token, lock::Millis(0), by);
      node.in_flight = true;
    } catch (const Error&) {
      // Its key, if any, expires with the TTL.
    }
  }
  for (Node& node : m_nodes) {
    if (!node.in_flight) continue;
    node.in_flight = false;
    try {
      (void)node.store->receive_release(node_deadline(by, std::nullopt));
    } catch (const Error&) {
      // Likewise.
    }
  }
}

void QuorumLockStore::send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) {
  m_sent_renew = request;
  const lock::TimePoint by = step_deadline(deadline);
  connect_nodes(by);
  send_to_all([&](RedisLockStore& store) { store.send_renew(request, by); });
}

lock::TokenCheck QuorumLockStore::receive_renew(std::optional<lock::TimePoint> deadline) {
  const lock::TimePoint read_by = step_deadline(deadline);
  std::size_t held = 0;
  std::size_t taken = 0;
  std::vector<std::size_t> vanished;
  for (std::size_t i = 0; i < m_nodes.size(); ++i) {
    Node& node = m_nodes[i];
    if (!node.in_flight) continue;
    node.in_flight = false;
    try {
      switch (node.store->receive_renew(node_deadline(read_by, deadline))) {
      case lock::TokenCheck::ok:
      case lock::TokenCheck::unconfirmed: ++held; break;
      case lock::TokenCheck::free: vanished.push_back(i); break;
      case lock::TokenCheck::taken: ++taken; break;
      }
    } catch (const Error& error) {
      node.error = error.what();
    }
  }
  // Set it again where it vanished (a restart, a deletion), as long as we still hold it
  // somewhere: SET NX with our token takes it from nobody.
  std::size_t restored = 0;
  if (held > 0 && !vanished.empty()) {
    const lock::TimePoint by = step_deadline(deadline);
    for (std::size_t i : vanished) {
      Node& node = m_nodes[i];
      try {
        node.store->send_restore(m_sent_renew.name, m_sent_renew.token, m_sent_renew.ttl, by);
        node.in_flight = true;
      } catch (const Error& error) {
        node.error = error.what();
      }
    }
    for (std::size_t i : vanished) {
      Node& node = m_nodes[i];
      if (!node.in_flight) continue;
      node.in_flight = false;
      try {
        if (node.store->receive_restore(node_deadline(by, deadline))) {
          ++restored;
          log::verbose("lock '{}': set again on {}, where it had vanished", printable(m_sent_renew.name), node.label);
        } else {
          ++taken;
        }
      } catch (const Error& error) {
        node.error = error.what();
      }
    }
  }
  if (held + restored >= quorum()) return lock::TokenCheck::ok;
  const auto unreachable = static_cast<std::size_t>(
      std::count_if(m_nodes.begin(), m_nodes.end(), [](const Node& node) { return !node.error.empty(); }));
  if (held + restored + unreachable < quorum()) {
    // A majority answered that the lock is not ours there: lost, whatever the others would say.
    return taken > 0 ? lock::TokenCheck::taken : lock::TokenCheck::free;
  }
  throw UnavailableError(fmt::format("lock '{}' renewed on only {} of {} nodes (a majority is {}): {}",
                                     printable(m_sent_renew.name), held + restored, m_nodes.size(), quorum(),
                                     failed_nodes()));
}

void QuorumLockStore::send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                                   std::optional<lock::TimePoint> deadline) {
  m_release_name = name;
  m_release_token = token;
  const lock::TimePoint by = step_deadline(deadline);
  connect_nodes(by);
  send_to_all([&](RedisLockStore& store) { store.send_release(name, token, min_hold, by); });
}

lock::ReleaseResult QuorumLockStore::receive_release(std::optional<lock::TimePoint> deadline) {
  const lock::TimePoint read_by = step_deadline(deadline);
  lock::ReleaseResult result;
  std::size_t reached = 0;
  std::size_t released = 0;
  std::size_t taken = 0;
  for (Node& node : m_nodes) {
    if (!node.in_flight) continue;
    node.in_flight = false;
    try {
      lock::ReleaseResult one = node.store->receive_release(node_deadline(read_by, deadline));
      ++reached;
      if (one.outcome == lock::TokenCheck::ok) {
        ++released;
        result.kept_for = std::max(result.kept_for, one.kept_for);
        if (result.keeper_pid == 0 && one.keeper_pid != 0) {
          result.keeper_pid = one.keeper_pid;
          result.keeper_host = one.keeper_host;
        }
      } else if (one.outcome == lock::TokenCheck::taken) {
        ++taken;
      }
    } catch (const Error& error) {
      node.error = error.what();
    }
  }
  if (reached < quorum() && released == 0) {
    // Nothing of ours was found (a clean-up after an attempt already given back): say it quietly.
    log::verbose("lock '{}': release reached only {} of {} nodes: {}", printable(m_release_name), reached,
                 m_nodes.size(), failed_nodes());
    result.outcome = lock::TokenCheck::ok;
    return result;
  }
  if (reached < quorum()) {
    log::warn("lock '{}' released on only {} of {} nodes; could not reach {}: the lock expires there with its TTL",
              printable(m_release_name), reached, m_nodes.size(), failed_nodes());
    result.outcome = lock::TokenCheck::ok;
    return result;
  }
  if (released > 0) {
    result.outcome = lock::TokenCheck::ok;
  } else {
    result.outcome = taken > 0 ? lock::TokenCheck::taken : lock::TokenCheck::free;
  }
  return result;
}

lock::ForceResult QuorumLockStore::force_release(std::string_view name, const lock::ForceCondition& only) {
  std::optional<lock::ForceResult> broken;
  std::optional<lock::ForceResult> other;
  std::size_t reached = 0;
  std::string errors;
  connect_nodes(step_deadline(std::nullopt));
  for (Node& node : m_nodes) {
    try {
      lock::ForceResult result = node.store->force_release(name, only);
      ++reached;
      if (result.outcome == lock::ForceResult::Outcome::broken && (!broken || !broken->lock.held())) {
        broken = std::move(result);
      } else if (result.outcome == lock::ForceResult::Outcome::other_holder && !other) {
        other = std::move(result);
      }
    } catch (const Error& error) {
      errors += fmt::format("{}{} ({})", errors.empty() ? "" : ", ", node.label, error.what());
    }
  }
  if (reached == 0) throw UnavailableError(fmt::format("no node answered: {}", errors));
  if (reached < m_nodes.size()) {
    log::warn("lock '{}' not broken on {}: it expires there with its TTL", printable(name), errors);
  }
  if (broken) return std::move(*broken);
  if (other) return std::move(*other);
  return lock::ForceResult{};
}

std::vector<QuorumLockStore::NodeToken> QuorumLockStore::read_tokens(std::string_view name) {
  std::vector<NodeToken> tokens(m_nodes.size());
  const lock::TimePoint by = step_deadline(std::nullopt);
  connect_nodes(by);
  for (std::size_t i = 0; i < m_nodes.size(); ++i) {
    m_nodes[i].in_flight = false;
    try {
      m_nodes[i].store->send_read_token(name, by);
      m_nodes[i].in_flight = true;
    } catch (const Error& error) {
      tokens[i].error = error.what();
    }
  }
  const lock::TimePoint read_by = step_deadline(std::nullopt);
  for (std::size_t i = 0; i < m_nodes.size(); ++i) {
    if (!m_nodes[i].in_flight) continue;
    m_nodes[i].in_flight = false;
    try {
      tokens[i].token = m_nodes[i].store->receive_read_token(node_deadline(read_by, std::nullopt));
    } catch (const Error& error) {
      tokens[i].error = error.what();
    }
  }
  return tokens;
}

lock::LockInfo QuorumLockStore::inspect_node(std::size_t node, std::string_view name) {
  return m_nodes.at(node).store->inspect(name);
}

lock::LockInfo QuorumLockStore::inspect(std::string_view name) {
  std::vector<NodeToken> tokens = read_tokens(name);
  std::map<std::string, std::size_t> votes;
  std::size_t answered = 0;
  for (const NodeToken& token : tokens) {
    if (!token.error.empty()) continue;
    ++answered;
    if (token.token) ++votes[*token.token];
  }
  if (answered < quorum()) {
    std::string why;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (!tokens[i].error.empty()) why += fmt::format("{}{} ({})", why.empty() ? "" : ", ", label(i), tokens[i].error);
    }
    throw UnavailableError(
        fmt::format("only {} of {} nodes answered (a majority is {}): {}", answered, m_nodes.size(), quorum(), why));
  }
  for (const auto& [token, count] : votes) {
    if (count < quorum()) continue;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].token != token) continue;
      try {
        return inspect_node(i, name);
      } catch (const Error&) {
        // Another node of the majority may tell.
      }
    }
  }
  return lock::LockInfo{}; // no majority holds it: free
}

std::vector<std::string> QuorumLockStore::list_names(std::string_view glob) {
  std::vector<std::string> names;
  std::size_t reached = 0;
  std::string errors;
  connect_nodes(step_deadline(std::nullopt));
  for (Node& node : m_nodes) {
    try {
      std::vector<std::string> some = node.store->list_names(glob);
      ++reached;
      names.insert(names.end(), some.begin(), some.end());
    } catch (const Error& error) {
      errors += fmt::format("{}{} ({})", errors.empty() ? "" : ", ", node.label, error.what());
    }
  }
  if (reached < quorum()) {
    throw UnavailableError(
        fmt::format("only {} of {} nodes answered (a majority is {}): {}", reached, m_nodes.size(), quorum(), errors));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace {

// Reads the signal that made `interrupt_fd` readable and throws Interrupted carrying it.
[[noreturn]] void throw_interrupted(int interrupt_fd) {
  signalfd_siginfo info{};
  ssize_t got = ::read(interrupt_fd, &info, sizeof info);
  throw Interrupted(got == static_cast<ssize_t>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0);
}

// Sleeps `timeout`, watching `interrupt_fd` (a signalfd; -1: none) as the stores' waits do.
void sleep_interruptible(lock::Millis timeout, int interrupt_fd) {
  const lock::TimePoint until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<lock::Millis>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd watched{interrupt_fd, POLLIN, 0};
    int n = ::poll(&watched, interrupt_fd >= 0 ? 1 : 0, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("poll", errno);
    if (n > 0 && (watched.revents & POLLIN) != 0) throw_interrupted(interrupt_fd);
  }
}

// The time from now to `until` for poll(2), at least 0, rounded up.
int poll_timeout(lock::TimePoint until) {
  auto left = std::chrono::ceil<lock::Millis>(until - std::chrono::steady_clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

// How long a quorum wait's watcher registration counts: past the longest wait, with slack for
// the steps around it. Each wait registers anew (see Watching), so this bounds how many a
// waiter leaves behind.
constexpr lock::Millis k_registration = k_quorum_fallback + k_quorum_jitter + lock::Millis(4'000);

// k_quorum_fallback plus a jitter of its own for each wait, from the wait's random ticket.
lock::Millis fallback_for(std::string_view ticket) {
  std::uint32_t bits = 0;
  for (char c : ticket.substr(0, 8)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
    bits = bits * 16 + static_cast<std::uint32_t>(digit);
  }
  return k_quorum_fallback + lock::Millis(bits % static_cast<std::uint32_t>(k_quorum_jitter.count()));
}

} // namespace

std::vector<std::optional<RedisLockStore::Watched>> QuorumLockStore::watch_nodes(std::string_view name,
                                                                                 std::string_view ticket) {
  std::vector<std::optional<RedisLockStore::Watched>> seen(m_nodes.size());
  const lock::TimePoint by = step_deadline(std::nullopt);
  send_to_all([&](RedisLockStore& store) { store.send_watch(name, ticket, k_registration, by); });
  const lock::TimePoint read_by = step_deadline(std::nullopt);
  for (std::size_t i = 0; i < m_nodes.size(); ++i) {
    Node& node = m_nodes[i];
    if (!node.in_flight) continue;
    node.in_flight = false;
    try {
      seen[i] = node.store->receive_watch(node_deadline(read_by, std::nullopt));
    } catch (const Error& error) {
      node.error = error.what();
    }
  }
  return seen;
}

// Blocking on N nodes at once with no thread: a BLPOP goes out on each node's connection, and
// one poll(2) watches their sockets (and the interrupt fd) until a reply comes. The first wake
// ends the wait; the other BLPOPs are still pending then, and their connections cannot carry
// the next attempt until they are answered. A release frees the lock on every node within a
// moment, so their own wakes usually follow at once: they are read (drained) for a short
// grace. A connection whose BLPOP is still pending after it is dropped, which ends its BLPOP on
// the server; the next step connects again. No reply is ever read as another request's: a
// connection is either drained to its BLPOP's answer or closed.
lock::WatchWake QuorumLockStore::block_on(std::string_view name, std::string_view ticket,
                                          const std::vector<std::size_t>& nodes, lock::Millis timeout,
                                          int interrupt_fd) {
  const lock::TimePoint send_by = step_deadline(std::nullopt);
  std::vector<std::size_t> waiting;
  for (std::size_t i : nodes) {
    Node& node = m_nodes[i];
    try {
      node.store->send_wait_for_release(name, ticket, timeout, send_by);
      waiting.push_back(i);
    } catch (const Error& error) {
      node.error = error.what();
    }
  }
  const lock::TimePoint started = std::chrono::steady_clock::now();
  // The servers answer by themselves when `timeout` passes; a node that does not by a node
  // timeout later is not answering.
  const lock::TimePoint until = started + timeout + m_node_timeout;
  const lock::Millis drain_grace = std::clamp(m_node_timeout / 4, lock::Millis(10), lock::Millis(100));
  std::optional<lock::WatchWake> woken;
  std::optional<lock::TimePoint> drain_until;
  std::vector<pollfd> fds;
  while (!waiting.empty()) {
    const lock::TimePoint limit = drain_until.value_or(until);
    fds.clear();
    bool ready_now = false; // TLS holds decrypted bytes for one of them
    for (std::size_t i : waiting) {
      short events = m_nodes[i].store->wake_events();
      if (events == 0) ready_now = true;
      fds.push_back(pollfd{m_nodes[i].store->wake_fd(), events, 0});
    }
    const bool watch_interrupt = interrupt_fd >= 0 && !drain_until;
    if (watch_interrupt) fds.push_back(pollfd{interrupt_fd, POLLIN, 0});
    const int wait_ms = ready_now ? 0 : poll_timeout(limit);
    int n = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("poll", errno);
    if (watch_interrupt && (fds.back().revents & POLLIN) != 0) {
      for (std::size_t i : waiting) m_nodes[i].topology->disconnect();
      throw_interrupted(interrupt_fd);
    }
    std::vector<std::size_t> still;
    for (std::size_t k = 0; k < waiting.size(); ++k) {
      Node& node = m_nodes[waiting[k]];
      if (fds[k].revents == 0 && fds[k].events != 0) {
        still.push_back(waiting[k]);
        continue;
      }
      try {
        std::optional<lock::WatchWake> got = node.store->poll_wait_for_release();
        if (!got) {
          still.push_back(waiting[k]);
          continue;
        }
        if (*got != lock::WatchWake::timeout && !woken) {
          log::verbose("lock '{}': woken by a release on {}", printable(name), node.label);
          woken = got;
          drain_until = std::chrono::steady_clock::now() + drain_grace;
        }
      } catch (const Error& error) {
        node.error = error.what(); // the connection was dropped: nothing pending on it
      }
    }
    waiting = std::move(still);
    if (n == 0 && !ready_now && std::chrono::steady_clock::now() >= limit) break;
  }
  for (std::size_t i : waiting) {
    log::verbose("lock '{}': {} did not answer its wait in time; reconnecting", printable(name), m_nodes[i].label);
    m_nodes[i].topology->disconnect();
  }
  if (woken) return *woken;
  // Every BLPOP failed early (nodes gone, or refused): wait out the rest, never spin.
  const lock::TimePoint ends = started + timeout;
  if (std::chrono::steady_clock::now() < ends) {
    sleep_interruptible(std::chrono::ceil<lock::Millis>(ends - std::chrono::steady_clock::now()), interrupt_fd);
  }
  return lock::WatchWake::timeout;
}

bool QuorumLockStore::wait_for_wake(std::string_view name, std::string_view /*ticket*/, lock::Millis timeout,
                                    int interrupt_fd) {
  m_watching.reset();
  const std::string mine = random_token(); // see Watching
  const lock::Millis bound = std::min(timeout, fallback_for(mine));
  std::vector<std::optional<RedisLockStore::Watched>> seen = watch_nodes(name, mine);
  std::size_t free = 0;
  std::vector<std::size_t> held;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) continue;
    if (seen[i]->value.empty()) {
      ++free;
    } else {
      held.push_back(i);
    }
  }
  // Freed on a majority since the attempt: try again at once, but not twice in a row (nodes
  // that disagree with the attempts, such as a line of single-node waiters, must not make us
  // spin).
  const bool looked_free = m_looked_free;
  m_looked_free = free >= quorum() && !looked_free;
  if (m_looked_free) {
    log::verbose("lock '{}': free on {} of {} nodes since the attempt; trying again", printable(name), free,
                 m_nodes.size());
    return true;
  }
  return block_on(name, mine, held, bound, interrupt_fd) != lock::WatchWake::timeout;
}

lock::LockInfo QuorumLockStore::watch(std::string_view name, std::string_view /*ticket*/) {
  m_watching.reset();
  const std::string mine = random_token(); // see Watching
  std::vector<std::optional<RedisLockStore::Watched>> seen = watch_nodes(name, mine);
  std::map<std::string, std::size_t> votes;
  std::size_t answered = 0;
  Watching watching{std::string(name), mine, {}};
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) continue;
    ++answered;
    if (seen[i]->value.empty()) continue;
    ++votes[seen[i]->value];
    watching.nodes.push_back(i); // watch.lua registered us there
  }
  if (answered < quorum()) {
    throw UnavailableError(fmt::format("only {} of {} nodes answered (a majority is {}): {}", answered, m_nodes.size(),
                                       quorum(), failed_nodes()));
  }
  for (const auto& [value, count] : votes) {
    if (count < quorum()) continue;
    for (std::size_t i : watching.nodes) {
      if (seen[i]->value != value) continue;
      m_watching = std::move(watching);
      return std::move(seen[i]->lock);
    }
  }
  return lock::LockInfo{}; // no majority holds it: free
}

lock::WatchWake QuorumLockStore::wait_for_release(std::string_view name, std::string_view /*ticket*/,
                                                  lock::Millis timeout, int interrupt_fd) {
  if (!m_watching || m_watching->name != name) return lock::WatchWake::recheck;
  Watching watching = std::move(*m_watching);
  m_watching.reset();
  const lock::Millis bound = std::min(timeout, fallback_for(watching.ticket));
  lock::WatchWake wake = block_on(name, watching.ticket, watching.nodes, bound, interrupt_fd);
  return wake == lock::WatchWake::timeout ? wake : lock::WatchWake::recheck;
}

void QuorumLockStore::leave_queue(std::string_view name, std::string_view ticket) {
  (void)name;
  (void)ticket;
}

void QuorumLockStore::set_audit(bool record, const std::string& actor) {
  for (Node& node : m_nodes) node.store->set_audit(record, actor);
}

void QuorumLockStore::disconnect() noexcept {
  for (Node& node : m_nodes) node.topology->disconnect();
}

} // namespace rlock::redis
