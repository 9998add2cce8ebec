// SPDX-License-Identifier: MIT
// The slow tier's own smoke test: the Sentinel and Cluster fixtures start, agree and fail
// over, checked with plain RESP commands (not rlock), so that a fixture bug shows here first.
#include "cluster_fixture.hpp"
#include "helpers.hpp"
#include "sentinel_fixture.hpp"
#include "tls_support.hpp"
#include "topology_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>

using namespace rlock::test;

namespace {

// Milliseconds since `start`, for the MESSAGEs that report how long a fixture took.
long long elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST_CASE("sentinel fixture: three sentinels name the master; a failover moves it and demotes the old one") {
  auto start = std::chrono::steady_clock::now();
  SentinelFixture sentinels;
  MESSAGE("sentinel fixture ready in ", elapsed_ms(start), " ms");
  const int old_master = sentinels.master_port();
  CHECK(old_master == sentinels.servers()[0]->port());
  for (std::size_t i = 0; i < 3; ++i) {
    const auto addr = split_reply(sentinels.sentinel_command(i, {"SENTINEL", "get-master-addr-by-name", "mymaster"}));
    REQUIRE(addr.size() == 2);
    CHECK(addr[0] == "127.0.0.1");
    CHECK(std::stoi(addr[1]) == old_master);
  }
  CHECK(role_of(sentinels.master()) == "master");
  REQUIRE(sentinels.replicas().size() == 1);
  CHECK(role_of(*sentinels.replicas()[0]) == "slave");
  CHECK(sentinels.url() == fmt::format("redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/mymaster",
                                       sentinels.sentinel_ports()[0], sentinels.sentinel_ports()[1],
                                       sentinels.sentinel_ports()[2]));

  start = std::chrono::steady_clock::now();
  const int new_master = sentinels.failover();
  MESSAGE("sentinel failover in ", elapsed_ms(start), " ms");
  CHECK(new_master != old_master);
  CHECK(new_master == sentinels.servers()[1]->port());
  CHECK(role_of(sentinels.server_on(new_master)) == "master");
  sentinels.wait_replica_of(old_master, new_master);
  MESSAGE("old master a replica of the new one ", elapsed_ms(start), " ms after the failover began");
  CHECK(role_of(sentinels.server_on(old_master)) == "slave");
  sentinels.wait_ready();

  // Sentinels fail over by themselves when the master dies (quorum 2 of 3).
  start = std::chrono::steady_clock::now();
  sentinels.server_on(new_master).kill();
  CHECK(sentinels.wait_new_master(new_master) == old_master);
  MESSAGE("automatic failover after a SIGKILL of the master in ", elapsed_ms(start), " ms");
  sentinels.wait_ready();

  start = std::chrono::steady_clock::now();
  sentinels.kill_sentinel(0);
  sentinels.wait_ready();
  sentinels.start_sentinel(0);
  sentinels.wait_ready();
  MESSAGE("a sentinel killed and back in ", elapsed_ms(start), " ms");
  CHECK(sentinels.master_port() == old_master);
  CHECK_THROWS_WITH_AS(sentinels.wait_new_master(old_master, 500ms), doctest::Contains("== sentinel on"), SupportError);
}

TEST_CASE("sentinel fixture, TLS: sentinels monitor and name the master by its TLS port") {
  SentinelOptions options;
  options.tls = true;
  const auto start = std::chrono::steady_clock::now();
  SentinelFixture sentinels(options);
  MESSAGE("TLS sentinel fixture ready in ", elapsed_ms(start), " ms");
  RedisServer& first = *sentinels.servers()[0];
  CHECK(sentinels.master_port() == first.tls_port());
  CHECK(&sentinels.master() == &first);
  const int sentinel_tls = sentinels.sentinel_tls_ports()[1];
  CHECK(sentinels.url() == fmt::format("rediss+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/mymaster",
                                       sentinels.sentinel_tls_ports()[0], sentinel_tls,
                                       sentinels.sentinel_tls_ports()[2]));
  const RunResult named =
      run_program({redis_cli_bin(), "--tls", "--cacert", tls_cert("ca.crt"), "-p", std::to_string(sentinel_tls),
                   "SENTINEL", "get-master-addr-by-name", "mymaster"});
  CHECK(split_lines(named.out) == std::vector<std::string>{"127.0.0.1", std::to_string(first.tls_port())});
  const int new_master = sentinels.failover();
  CHECK(new_master == sentinels.servers()[1]->tls_port());
}

TEST_CASE("cluster fixture: three masters cover all 16384 slots; CLUSTER FAILOVER promotes a replica") {
  auto start = std::chrono::steady_clock::now();
  ClusterFixture cluster;
  MESSAGE("cluster fixture ready in ", elapsed_ms(start), " ms");
  const auto masters = cluster.master_ports();
  REQUIRE(masters.size() == 3);
  CHECK(cluster.replica_ports().size() == 3);
  int covered = 0;
  for (const auto& node : parse_cluster_nodes(cluster.command(masters[0], {"CLUSTER", "NODES"}))) {
    for (const auto& [first, last] : node.slots) covered += last - first + 1;
  }
  CHECK(covered == 16384);
  CHECK(key_slot("rlock:{foo}") == 12182); // CLUSTER KEYSLOT foo
  CHECK(trim(cluster.command(masters[0], {"CLUSTER", "KEYSLOT", "rlock:{shard}"})) ==
        std::to_string(key_slot("rlock:{shard}")));
  const auto names = cluster.lock_names_in_each_shard();
  REQUIRE(names.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string key = lock_key(names[i]);
    CHECK(cluster.port_of_key(key) == masters[i]);
    CHECK(cluster.command(masters[i], {"SET", key, "x"}) == "OK");
    CHECK(contains(cluster.command(masters[(i + 1) % 3], {"GET", key}), "MOVED"));
  }

  const int old_master = masters[0];
  const auto replicas = cluster.replicas_of(old_master);
  REQUIRE(replicas.size() == 1);
  start = std::chrono::steady_clock::now();
  cluster.failover(replicas[0]);
  MESSAGE("cluster failover in ", elapsed_ms(start), " ms");
  CHECK(cluster.master_for_slot(0) == replicas[0]);
  CHECK(role_of(cluster.node(replicas[0])) == "master");
  CHECK(role_of(cluster.node(old_master)) == "slave");
  CHECK(cluster.command(replicas[0], {"GET", lock_key(names[0])}) == "x");
  CHECK_THROWS_WITH_AS(cluster.failover(masters[1]), doctest::Contains("== cluster node on"), SupportError);

  // A master killed: its replica takes over after cluster-node-timeout; back, it rejoins as a replica.
  start = std::chrono::steady_clock::now();
  cluster.kill(replicas[0]);
  cluster.wait_ok();
  MESSAGE("automatic cluster failover after a SIGKILL of a master in ", elapsed_ms(start), " ms");
  CHECK(cluster.master_for_slot(0) == old_master);
  start = std::chrono::steady_clock::now();
  cluster.start(replicas[0]);
  cluster.wait_ok();
  MESSAGE("the killed master back as a replica in ", elapsed_ms(start), " ms");
  CHECK(role_of(cluster.node(replicas[0])) == "slave");
  CHECK(cluster.replicas_of(old_master) == std::vector<int>{replicas[0]});
}

TEST_CASE("cluster fixture, host-name variant: a wrong node answers MOVED … localhost:PORT") {
  ClusterOptions options;
  options.replicas_per_master = 0;
  options.announce_hostname = true;
  ClusterFixture cluster(options);
  const auto masters = cluster.master_ports();
  REQUIRE(masters.size() == 3);
  CHECK(cluster.replica_ports().empty());
  const std::string key = lock_key(cluster.lock_name_on(masters[1]));
  CHECK(cluster.command(masters[0], {"GET", key}) == fmt::format("MOVED {} localhost:{}", key_slot(key), masters[1]));
  CHECK(contains(cluster.seed_url(), "redis+cluster://127.0.0.1:"));
  // Without replicas a dead master takes the cluster down: wait_ok() fails, with the logs.
  cluster.kill(masters[2]);
  CHECK_THROWS_WITH_AS(cluster.wait_ok(3s), doctest::Contains("not ok within 3000 ms"), SupportError);
}

TEST_CASE("sentinel fixture, passwords and host names, two replicas: sentinels name localhost and need AUTH") {
  SentinelOptions options;
  options.replicas = 2;
  options.master_password = "master-secret";
  options.sentinel_password = "sentinel-secret";
  options.announce_hostnames = true;
  const auto start = std::chrono::steady_clock::now();
  SentinelFixture sentinels(options);
  MESSAGE("sentinel fixture (2 replicas, passwords, host names) ready in ", elapsed_ms(start), " ms");
  const int port = sentinels.sentinel_ports()[0];
  CHECK(contains(redis_command(port, {"SENTINEL", "get-master-addr-by-name", "mymaster"}), "NOAUTH"));
  const auto addr = split_reply(sentinels.sentinel_command(0, {"SENTINEL", "get-master-addr-by-name", "mymaster"}));
  REQUIRE(addr.size() == 2);
  CHECK(addr[0] == "localhost");
  CHECK(contains(redis_command(sentinels.master_port(), {"PING"}), "NOAUTH"));
  CHECK(sentinels.master().command({"PING"}) == "PONG");
  CHECK(sentinels.replicas().size() == 2);
  const int new_master = sentinels.failover();
  CHECK(split_reply(sentinels.sentinel_command(2, {"SENTINEL", "get-master-addr-by-name", "mymaster"})) ==
        std::vector<std::string>{"localhost", std::to_string(new_master)});
}

TEST_CASE("sentinel fixture, replication through a proxy: the promoted replica misses what the proxy held") {
  SentinelOptions options;
  options.replication_through_proxy = true;
  SentinelFixture sentinels(options);
  RedisServer& master = sentinels.master();
  RedisServer& replica = *sentinels.replicas()[0];
  CHECK(master.command({"SET", "before", "1"}) == "OK");
  REQUIRE(wait_until([&] { return replica.command({"GET", "before"}) == "1"; }, 10s));
  sentinels.replication_proxy(0).set("blackhole");
  CHECK(master.command({"SET", "after", "1"}) == "OK");
  CHECK(sentinels.failover() == replica.port());
  CHECK(replica.command({"GET", "before"}) == "1");
  CHECK(replica.command({"GET", "after"}) == "(nil)");
}

TEST_CASE("cluster fixture, TLS: over TLS, nodes redirect to their TLS ports") {
  ClusterOptions options;
  options.tls = true;
  const auto start = std::chrono::steady_clock::now();
  ClusterFixture cluster(options);
  MESSAGE("TLS cluster fixture ready in ", elapsed_ms(start), " ms");
  const auto masters = cluster.master_ports();
  REQUIRE(masters.size() == 3);
  const std::string key = lock_key(cluster.lock_name_on(masters[1]));
  // Plaintext connections are told plaintext ports, TLS connections TLS ports.
  CHECK(cluster.command(masters[0], {"GET", key}) == fmt::format("MOVED {} 127.0.0.1:{}", key_slot(key), masters[1]));
  const RunResult moved = run_program({redis_cli_bin(), "--tls", "--cacert", tls_cert("ca.crt"), "-p",
                                       std::to_string(cluster.node(masters[0]).tls_port()), "GET", key});
  CHECK(contains(moved.out, fmt::format("MOVED {} 127.0.0.1:{}", key_slot(key), cluster.node(masters[1]).tls_port())));
  CHECK(contains(cluster.seed_url(), fmt::format("rediss+cluster://127.0.0.1:{},", cluster.nodes()[0]->tls_port())));
  for (int replica : cluster.replica_ports()) {
    CHECK(info_field(cluster.command(replica, {"INFO", "replication"}), "master_link_status") == "up");
  }
}
