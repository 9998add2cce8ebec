// SPDX-License-Identifier: MIT
// SentinelFixture: a master, its replicas and three sentinels (real redis-server processes on
// free loopback ports), for the slow tests of rlock's Sentinel support.
#pragma once

#include "fault_proxy.hpp"
#include "redis_server.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace rlock::test {

struct SentinelOptions {
  int replicas = 1; // 1 or 2
  std::string master_name = "mymaster";
  int quorum = 2;
  std::string master_password;   // requirepass + masterauth on the data nodes
  std::string sentinel_password; // requirepass (and sentinel-pass) on the sentinels
  // The host-name variant: sentinels and replicas announce "localhost", so that
  // SENTINEL get-master-addr-by-name answers "localhost PORT".
  bool announce_hostnames = false;
  // Each replica replicates through a FaultProxy in front of the first master (see
  // replication_proxy()), so a test can hold its replication back ("blackhole") and get a
  // promoted replica that misses writes. Raises failover-timeout to 60 s: sentinel would
  // otherwise repoint the replica at the master itself ("+fix-slave-config") after it.
  bool replication_through_proxy = false;
  // TLS everywhere (tls_support's server.crt: DNS:localhost, IP:127.0.0.1, CA ca.crt):
  // sentinels and data nodes listen with TLS too (tls-replication yes), replicate and monitor
  // over TLS, and the sentinels name TLS ports. Plaintext ports stay open for the fixture's own
  // commands. Not with replication_through_proxy.
  bool tls = false;
};

// Starts the data nodes (server 0 the master, the others its replicas), then the sentinels
// (`redis-server FILE --sentinel`, down-after-milliseconds 1000), and waits until ready
// (wait_ready()). Ports of data nodes are the ones the sentinels name (TLS ports under
// options.tls). Everything stops on destruction. A topology that does not converge within
// its timeout throws SupportError with every server's log: never a silent skip.
class SentinelFixture {
 public:
  explicit SentinelFixture(SentinelOptions options = {});
  ~SentinelFixture();
  SentinelFixture(const SentinelFixture&) = delete;
  SentinelFixture& operator=(const SentinelFixture&) = delete;

  const SentinelOptions& options() const noexcept { return m_options; }
  const std::string& master_name() const noexcept { return m_options.master_name; }
  // The sentinels' ports, in start order (also after kill_sentinel()); their TLS ports under
  // options.tls.
  std::vector<int> sentinel_ports() const;
  std::vector<int> sentinel_tls_ports() const;
  RedisServer& sentinel(std::size_t index) { return *m_sentinels.at(index); }

  // redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/MASTER, then `suffix` as given
  // ("/2", "?sentinel_user=…"). `userinfo` ("user:pass@" or ":pass@") goes before the hosts.
  // Under options.tls: rediss+sentinel:// and the sentinels' TLS ports.
  std::string url(const std::string& suffix = {}, const std::string& userinfo = {}) const;

  // The master's port as the first answering sentinel names it (SENTINEL
  // get-master-addr-by-name). Throws when no sentinel answers.
  int master_port() const;
  // The data node on master_port(), and every other one (replicas by sentinel's view, or
  // stopped).
  RedisServer& master();
  std::vector<RedisServer*> replicas();
  // Every data node, in start order (server 0 was the first master).
  std::vector<RedisServer*> servers();
  RedisServer& server_on(int port); // by the port sentinels name, or the plaintext one

  // Waits until every running sentinel names the same master, that master answers ROLE
  // master, and each running sentinel sees the running replicas and the other running
  // sentinels. Throws with the logs after `timeout`.
  void wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SENTINEL FAILOVER, then waits until every running sentinel names a new master and it
  // answers ROLE master. Returns the new master's port. The old master turns replica later
  // (sentinel converts it some seconds after): see wait_replica_of().
  int failover(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Waits until every running sentinel names a master other than `old_master` and it answers
  // ROLE master: after a failover sentinels started themselves (the master killed or paused
  // past down-after-milliseconds, 1 s). Returns its port.
  int wait_new_master(int old_master, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Waits until the node on `port` is a connected replica of the node on `master_port`.
  void wait_replica_of(int port, int master_port, std::chrono::milliseconds timeout = std::chrono::seconds(60));

  // SIGKILL sentinel `index`; start_sentinel() starts it again, monitoring the current master.
  void kill_sentinel(std::size_t index);
  void start_sentinel(std::size_t index);

  // The proxy replica `index` replicates through (replication_through_proxy only): set
  // "blackhole" to hold its replication stream back, "pass" to let it flow.
  FaultProxy& replication_proxy(std::size_t replica_index);

  // One command to sentinel `index` (with the sentinel password).
  std::string sentinel_command(std::size_t index, const std::vector<std::string>& argv) const;
  // Every server's log, sentinels included, for failure messages.
  std::string logs() const;

 private:
  std::vector<std::string> data_config(int master_port) const;
  std::vector<std::string> sentinel_config(int master_port) const;
  std::string host() const;
  int named_port(const RedisServer& server) const; // the port sentinels know it by
  RedisServerOptions tls_options(RedisServerOptions options) const;
  [[noreturn]] void fail(const std::string& what) const;

  SentinelOptions m_options;
  std::vector<std::unique_ptr<RedisServer>> m_servers;
  std::vector<std::unique_ptr<FaultProxy>> m_proxies;
  std::vector<std::unique_ptr<RedisServer>> m_sentinels;
};

} // namespace rlock::test
