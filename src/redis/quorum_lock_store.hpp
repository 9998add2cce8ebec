// SPDX-License-Identifier: MIT
// QuorumLockStore: the LockStore of the lock layer over N independent Redis masters (Redlock,
// SPEC §6.6), one RedisLockStore per node, with two-phase fences.
#pragma once

#include "lock/lock_store.hpp"
#include "redis/connection.hpp"
#include "redis/redis_lock_store.hpp"
#include "redis/topology.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::redis {

// The longest a quorum waiter or watcher blocks before looking again by itself when no release
// wakes it (a wake lost with a node's restart or a dropped connection), plus up to
// k_quorum_jitter, different for each wait, so that waiters do not look all at once.
constexpr lock::Millis k_quorum_fallback{5'000};
constexpr lock::Millis k_quorum_jitter{1'000};

class QuorumLockStore final : public lock::LockStore {
 public:
  // One store per node of `nodes` (each a single server), none connected yet. Every request
  // goes to all nodes at once (send halves first, then the replies), and one node's answer is
  // waited for at most `node_timeout` from the first send of the step.
  QuorumLockStore(const std::vector<ConnectOptions>& nodes, const std::string& prefix, lock::Millis node_timeout);

  // The step deadline from now on (the nodes' own I/O timeout stays as built).
  void set_node_timeout(lock::Millis node_timeout) noexcept { m_node_timeout = node_timeout; }
  lock::Millis node_timeout() const noexcept { return m_node_timeout; }

  std::size_t size() const noexcept { return m_nodes.size(); }
  std::size_t quorum() const noexcept { return m_nodes.size() / 2 + 1; }
  // The node's URL without its password, for messages.
  const std::string& label(std::size_t node) const { return m_nodes.at(node).label; }

  // Acquire (Redlock): the attempt goes to every node; it took the lock only when a majority
  // granted it within the validity time (TTL minus the time since the first send minus the
  // lease's safety margin) *and* the maximum T of their fences was then written back to a
  // majority still holding our token (fence_confirm.lua): T is the fence. Otherwise it is
  // released on every node. A majority that answered busy is busy (AcquireResult::lock from
  // one of them); fewer than a majority answering throws UnavailableError naming the nodes
  // that did not; a majority granted but not confirmed in time is AcquireResult::unconfirmed,
  // tried again like an outage. Attempts never join a waiting line (the ticket is not sent).
  void send_acquire(const lock::AcquireRequest& request) override;
  lock::AcquireResult receive_acquire(std::optional<lock::TimePoint> deadline) override;
  // Never: no node hands the lock over to a quorum waiter.
  std::optional<lock::Handoff> handoff() const override { return std::nullopt; }
  // Renew on every node; where the key vanished, set it again with the same token (restore.lua)
  // while at least one node still holds it. ok with a majority holding it again; free or
  // taken when a majority answered and said so; UnavailableError when the shortfall is nodes
  // that did not answer.
  void send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) override;
  lock::TokenCheck receive_renew(std::optional<lock::TimePoint> deadline) override;
  // Release on every node, whoever granted it. Fewer than a majority reached: ok, with a
  // warning naming the nodes it could not reach (their keys expire with the TTL). Never throws
  // for unreachable nodes.
  void send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                    std::optional<lock::TimePoint> deadline) override;
  lock::ReleaseResult receive_release(std::optional<lock::TimePoint> deadline) override;
  // On every reachable node, each checking `only` itself: broken when any node broke it (who
  // held it, as that node said); else other_holder when a node said so; else free.
  lock::ForceResult force_release(std::string_view name, const lock::ForceCondition& only) override;
  // The holder a majority agrees on (read from one of those nodes), else free.
  lock::LockInfo inspect(std::string_view name) override;
  // Every name any reachable node holds.
  std::vector<std::string> list_names(std::string_view glob) override;
  // After a busy attempt: registers as a watcher (watch.lua) on every node, under a ticket
  // made for this wait from `ticket`, and reads the lock there in the same step. When it is
  // free on a majority by then (released since the attempt), true at once. Otherwise blocks on
  // all the nodes that hold it at once (a BLPOP on each, one poll(2), no thread) until a
  // release that frees it on any of them wakes us (true), or `timeout`, at most
  // k_quorum_fallback plus jitter, passes (false: the caller looks again). No arrival order:
  // every waiter is woken and the first attempt to reach a majority wins (docs/quorum.md).
  bool wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout, int interrupt_fd) override;
  // Nothing to leave: attempts never join a line, and watcher registrations lapse by themselves.
  void leave_queue(std::string_view name, std::string_view ticket) override;
  // `rlock wait`: watch.lua on every node in one step. Held when a majority holds one value
  // (the holder as one of them describes it); free otherwise. UnavailableError when fewer than
  // a majority answered.
  lock::LockInfo watch(std::string_view name, std::string_view ticket) override;
  // Blocks as wait_for_wake does on the nodes the last watch() of `name` found held; any wake
  // is `recheck` (one node freed is no majority: watch() looks again), else timeout.
  lock::WatchWake wait_for_release(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                   int interrupt_fd) override;

  // What each node holds for `name`, read in parallel: for `status`.
  struct NodeToken {
    std::optional<std::string> token; // empty: the key is missing
    std::string error;                // not empty: the node did not answer (why)
  };
  std::vector<NodeToken> read_tokens(std::string_view name);
  // The holder as `node` describes it (throws as RedisLockStore::inspect).
  lock::LockInfo inspect_node(std::size_t node, std::string_view name);

  // RedisLockStore::set_audit on every node: each node keeps its own audit log.
  void set_audit(bool record, const std::string& actor);

  // Drops every connection (before a fork).
  void disconnect() noexcept;

 private:
  struct Node {
    std::unique_ptr<SingleNode> topology;
    std::unique_ptr<RedisLockStore> store;
    std::string label;
    bool in_flight = false; // a send of the current step went out
    std::string error;      // why the current step failed here

    // One step's request to this node: `send_it(*store)`, in flight when it did not throw;
    // an Error is this node's failure of the step.
    template <class Send>
    void send(Send&& send_it) {
      in_flight = false;
      try {
        send_it(*store);
        in_flight = true;
      } catch (const Error& failed) {
        error = failed.what();
      }
    }
  };
  // A new step: every node's error cleared, then Node::send to each.
  template <class Send>
  void send_to_all(Send&& send_it) {
    for (Node& node : m_nodes) {
      node.error.clear();
      node.send(send_it);
    }
  }
  // The deadline of a step begun now: node_timeout, no later than `limit`.
  lock::TimePoint step_deadline(std::optional<lock::TimePoint> limit) const;
  // The deadline for reading one node's answer of a step due by `read_by` (see the .cpp).
  lock::TimePoint node_deadline(lock::TimePoint read_by, std::optional<lock::TimePoint> limit) const;
  // Connects (and logs in to) every node not connected, all at once, by `by` at the latest
  // (Connection::connect_all): a node that does not answer costs the others nothing. A node
  // that failed says so at its next send.
  void connect_nodes(lock::TimePoint by);
  // Releases `name` for `token` on every node, waiting for the answers until a step deadline.
  void release_everywhere(std::string_view name, std::string_view token);
  // "a (why), b (why)": the nodes of the current step that failed.
  std::string failed_nodes() const;
  // watch.lua on every node in one step; nothing for a node that did not answer (its error
  // set).
  std::vector<std::optional<RedisLockStore::Watched>> watch_nodes(std::string_view name, std::string_view ticket);
  // BLPOPs `ticket`'s list on each of `nodes` at once for up to `timeout`: the first wake, or
  // timeout. See the .cpp for what becomes of the other nodes' BLPOPs.
  lock::WatchWake block_on(std::string_view name, std::string_view ticket, const std::vector<std::size_t>& nodes,
                           lock::Millis timeout, int interrupt_fd);
  // What the last watch() registered: the name, its wait ticket, the nodes holding the lock.
  // Each wait (wait_for_wake, watch) registers under a random ticket of its own, not the
  // caller's: a wake pushed to an earlier wait's list (a node that woke us second, a release
  // after we gave up) is never popped by a later wait; it lapses with its list. The ticket's
  // first digits also draw the wait's fallback jitter.
  struct Watching {
    std::string name;
    std::string ticket;
    std::vector<std::size_t> nodes;
  };

  std::vector<Node> m_nodes;
  lock::Millis m_node_timeout;
  lock::AcquireRequest m_sent_request; // the attempt in flight, its ticket dropped
  lock::TimePoint m_sent_at{};
  lock::RenewRequest m_sent_renew;
  std::string m_release_name;
  std::string m_release_token;
  std::optional<Watching> m_watching;
  bool m_looked_free = false; // the last wait_for_wake found the lock free and returned at once
};

} // namespace rlock::redis
