// SPDX-License-Identifier: MIT
// ClusterFixture: a Redis Cluster of three masters (and their replicas) made of real
// redis-server processes on free loopback ports, for the slow tests of rlock's Cluster support.
#pragma once

#include "redis_server.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlock::test {

struct ClusterOptions {
  int replicas_per_master = 1; // 1 or 0
  std::string password;        // requirepass + masterauth on every node
  // cluster-announce-hostname localhost + cluster-preferred-endpoint-type hostname: redirects
  // and CLUSTER SHARDS name "localhost" instead of an IP.
  bool announce_hostname = false;
  // tls-port (tls_support's server.crt: DNS:localhost, IP:127.0.0.1, CA ca.crt), tls-cluster
  // yes, tls-replication yes. Redis 7.0 answers each connection in kind: over TLS, MOVED and
  // CLUSTER SHARDS/SLOTS/NODES name the nodes' TLS ports, over plaintext their plaintext ports.
  // The plaintext port stays open for the fixture's own commands.
  bool tls = false;
  int node_timeout_ms = 1500; // cluster-node-timeout
};

// One line of CLUSTER NODES.
struct ClusterNode {
  std::string id;
  std::string ip;
  int port = 0; // as announced: the TLS port under tls-cluster
  std::string hostname;
  std::string flags;     // "myself,master", "slave", "master,fail", ...
  std::string master_id; // "-" for a master
  bool connected = false;
  std::vector<std::pair<int, int>> slots; // ranges, both ends included
  bool is_master() const;
  bool failed() const; // "fail" or "fail?"
};

// The hash slot of `key` (CRC16 of its hash tag, or of the whole key, modulo 16384).
int key_slot(std::string_view key);
// CLUSTER NODES parsed.
std::vector<ClusterNode> parse_cluster_nodes(const std::string& text);

// Starts the nodes (cluster-enabled, cluster-node-timeout 1500 ms, a free cluster bus port),
// joins them with `redis-cli --cluster create … --cluster-replicas N --cluster-yes` (the first
// three nodes become masters) and waits until ready (wait_ok()). Everything stops on
// destruction. A cluster that does not converge in time throws SupportError with every node's
// log: never a silent skip.
class ClusterFixture {
 public:
  explicit ClusterFixture(ClusterOptions options = {});
  ~ClusterFixture();
  ClusterFixture(const ClusterFixture&) = delete;
  ClusterFixture& operator=(const ClusterFixture&) = delete;

  const ClusterOptions& options() const noexcept { return m_options; }
  // Every node in start order; ports are the plaintext ones (RedisServer::port()).
  std::vector<RedisServer*> nodes();
  RedisServer& node(int port); // by plaintext or TLS port
  // The current masters / replicas, by the view of the first running node, in port order
  // of the masters' slots (the master of slot 0 first).
  std::vector<int> master_ports();
  std::vector<int> replica_ports();
  // The replicas of the master on `master_port`.
  std::vector<int> replicas_of(int master_port);
  int master_for_slot(int slot);
  int port_of_key(std::string_view key);
  // A lock NAME whose key PREFIX{NAME} lives on the master on `master_port` ("shard-N-…").
  std::string lock_name_on(int master_port, std::string_view prefix = "rlock:");
  // One such name for each master, in master_ports() order.
  std::vector<std::string> lock_names_in_each_shard(std::string_view prefix = "rlock:");

  // redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 (the first three nodes) then
  // `suffix`; under tls, rediss+cluster://HOST:TLS_PORT,… .
  std::string seed_url(const std::string& suffix = {}, const std::string& host = "127.0.0.1") const;

  // Waits until every running node says cluster_state:ok with all 16384 slots ok, all of them
  // agree on who serves which slots, every master has its replicas and they are in sync.
  void wait_ok(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // CLUSTER FAILOVER on the replica on `replica_port`, then waits until it is master and the
  // cluster is ok everywhere (wait_ok()).
  void failover(int replica_port, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SIGKILL the node on `port` / start it again (it rejoins with its nodes.conf).
  void kill(int port);
  void start(int port);

  // One command to the node on `port` (plaintext, with the password).
  std::string command(int port, const std::vector<std::string>& argv);
  // Every node's log, for failure messages.
  std::string logs() const;

 private:
  std::vector<ClusterNode> view();
  int plain_port(int announced_port);
  std::string check_ok();
  [[noreturn]] void fail(const std::string& what) const;

  ClusterOptions m_options;
  std::vector<std::unique_ptr<RedisServer>> m_nodes;
};

} // namespace rlock::test
