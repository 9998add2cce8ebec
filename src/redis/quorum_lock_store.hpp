// SPDX-License-Identifier: MIT
// QuorumLockStore: the LockStore of the lock layer over N independent Redis masters (Redlock,
// SPEC §6.6), one RedisLockStore per node, with two-phase fences.
#pragma once

#include "lock/lock_store.hpp"
#include "redis/connection.hpp"
#include "redis/redis_lock_store.hpp"
#include "redis/topology.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::redis {

// How often a waiter in quorum mode re-checks when nothing wakes it: the nodes keep no
// waiting line for it (see wait_for_wake).
constexpr lock::Millis k_quorum_poll{250};

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
  // No node wakes a quorum waiter: sleeps at most k_quorum_poll (or `timeout`), watching
  // `interrupt_fd`, and says false, for the caller to re-check (the bounded fallback).
  bool wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout, int interrupt_fd) override;
  // Nothing to leave: attempts never join a line.
  void leave_queue(std::string_view name, std::string_view ticket) override;

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
  };
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

  std::vector<Node> m_nodes;
  lock::Millis m_node_timeout;
  lock::AcquireRequest m_sent_request; // the attempt in flight, its ticket dropped
  lock::TimePoint m_sent_at{};
  lock::RenewRequest m_sent_renew;
  std::string m_release_name;
  std::string m_release_token;
};

} // namespace rlock::redis
