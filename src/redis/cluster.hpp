// SPDX-License-Identifier: MIT
// ClusterTopology: Redis Cluster, a lock's keys served by the primary of their hash slot.
#pragma once

#include "redis/cluster_map.hpp"
#include "redis/topology.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace rlock::redis {

// The slot map is computed on the client (key_slot) and read from CLUSTER SHARDS (CLUSTER SLOTS
// before Redis 7), from any node that answers. A MOVED updates that slot at once, a second one
// before the next full read has the whole map read again; an ASK sends the next command for that
// slot to the node it names, once, after ASKING. A node whose connection failed makes the next
// node_for() read the map again (at most every k_reload_interval) from the nodes still up: that
// is how a failover that gives no MOVED (the old primary is dead) is followed. Each node has its
// own Connection, and so its own script cache, at a stable address for the topology's life.
class ClusterTopology final : public Topology {
 public:
  enum class Start {
    cluster, // redis+cluster://: the URL's hosts are seeds, the map is read before the first use
    detect,  // redis://: one server, as SingleNode, until it answers MOVED (or, for
             // each_primary, CLUSTER SHARDS): then a cluster, with that server as the seed
  };

  // `options.endpoint`: the seed (and its seeds, every host of the URL), its credentials and
  // TLS settings, which every node gets with its own host and port.
  ClusterTopology(ConnectOptions options, Start start);

  Connection& node_for(std::string_view key, Deadline by) override;
  const ConnectOptions& options() const noexcept override { return m_options; }
  // Reads the map afresh and visits every primary that serves a slot.
  void each_primary(const std::function<void(Connection&)>& visit) override;
  void refresh(const ErrorReply& reason) override;
  void disconnect() noexcept override;

  // Whether keys are routed by slot (always, unless started to detect and no MOVED came yet).
  bool routing_by_slot() const noexcept { return m_by_slot; }

  static constexpr std::chrono::milliseconds k_reload_interval{100};
  // The least time one node is given to answer CLUSTER SHARDS when several may be asked.
  static constexpr std::chrono::milliseconds k_min_map_attempt{50};

 private:
  struct Node {
    std::unique_ptr<Connection> connection;
    bool seed = false;
  };
  struct Ask {
    int slot = 0;
    Connection* target = nullptr;
    bool armed = false; // ask_next() was called on the target
  };

  // The node dialled at host:port whose TLS certificate is checked against `name`, made the
  // first time it is named.
  Connection& node(const std::string& host, int port, const std::string& name, bool seed = false);
  // The node a redirect names: a known one at that address, else a new one checked against `host`.
  Connection& node_at(const std::string& host, int port);
  // Reads the slot map from the first node that answers; throws UnavailableError (69) when none
  // does, AuthError (77) when one refuses the command, ConfigError (78) when a seed is no
  // cluster node.
  // Gives up at `by`.
  void load_map(Deadline by);
  // A slot map from `connection`, asked until `by`; nullopt when that server is no cluster node.
  std::optional<std::vector<SlotRange>> read_map(Connection& connection, Deadline by);
  void apply(const std::vector<SlotRange>& ranges);
  // Turns a detecting topology into a cluster one; throws ConfigError (78) with a /db.
  void route_by_slot(std::string_view why);

  ConnectOptions m_options;
  bool m_by_slot;
  Connection* m_seed = nullptr; // Start::detect: the one server, with the URL's own options
  std::unique_ptr<Connection> m_seed_connection;
  // Every node ever named, never erased: the store keeps Connection* across calls.
  std::map<std::tuple<std::string, int, std::string>, Node> m_nodes;
  std::vector<Connection*> m_order; // the nodes in the order they were first named
  std::vector<Connection*> m_slots; // slot → its primary; null: not known
  std::optional<Ask> m_ask;
  bool m_loaded = false;
  bool m_stale = false;       // read the whole map before the next node_for()
  int m_moved_since_load = 0; // MOVED replies since the map was last read
  std::chrono::steady_clock::time_point m_loaded_at{};
};

} // namespace rlock::redis
