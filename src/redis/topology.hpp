// SPDX-License-Identifier: MIT
// Topology: which Redis node serves a key, between the lock store and the connections.
#pragma once

#include "redis/connection.hpp"
#include "redis/reply_class.hpp"

#include <functional>
#include <memory>
#include <string_view>

namespace rlock::redis {

// Where the lock keys live: one server today (SingleNode); Sentinel (the master it names) and
// Cluster (the node of a key's slot) are siblings behind the same interface. Every key of a
// lock shares the hash tag {NAME}, so one lock is always on one node.
class Topology {
 public:
  virtual ~Topology() = default;

  // The connection to the primary that serves `key`. Finding it (asking the sentinels,
  // reading the slot map) gives up at `by`: a renewal must never wait past its own deadline.
  virtual Connection& node_for(std::string_view key, Deadline by) = 0;

  // The URL's options: its timeouts bound what the lock store asks.
  virtual const ConnectOptions& options() const noexcept = 0;

  // Calls `visit` with the connection of every primary, one after the other (to list locks
  // with SCAN on each).
  virtual void each_primary(const std::function<void(Connection&)>& visit) = 0;

  // A reply said the topology moved (a redirect, a read-only former primary): the next
  // node_for() answers from a fresh view.
  virtual void refresh(const ErrorReply& reason) = 0;

  // Drops every connection (before a fork, so that parent and child share none); the next
  // call connects again.
  virtual void disconnect() noexcept = 0;
};

// One server at one address: what --url names.
class SingleNode final : public Topology {
 public:
  explicit SingleNode(ConnectOptions options) : m_connection(std::move(options)) {}

  Connection& node_for(std::string_view key, Deadline by) override;
  const ConnectOptions& options() const noexcept override { return m_connection.options(); }
  void each_primary(const std::function<void(Connection&)>& visit) override;
  // Drops the connection: the next call connects again, resolving the host name again, so that
  // a failover behind a DNS name or a virtual IP is followed.
  void refresh(const ErrorReply& reason) override;
  void disconnect() noexcept override;

 private:
  Connection m_connection;
};

// The topology `options.endpoint.routing` asks for: SingleNode, SentinelTopology or
// ClusterTopology. Connects to nothing yet.
std::unique_ptr<Topology> make_topology(const ConnectOptions& options);

} // namespace rlock::redis
