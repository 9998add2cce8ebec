// SPDX-License-Identifier: MIT
// rlock on Redis Cluster (rlock(1), REDIS CLUSTER): locks in every shard from one seed, given as
// redis+cluster:// or found by the first MOVED of a plain redis:// seed; status over all
// primaries; a held exec and a blocked waiter across CLUSTER FAILOVER; a shard lost for good;
// ASK while a slot migrates; TLS with announced host names; the man page's ACL, --audit and log.
#include "cluster_fixture.hpp"
#include "helpers.hpp"
#include "run.hpp"
#include "tls_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace rlock::test;

namespace {

// Waits until `name`'s lock key holds a token on the master that serves it (asked with plain
// commands, not rlock).
bool wait_held(ClusterFixture& cluster, const std::string& name, std::chrono::milliseconds timeout = 20s) {
  return wait_until(
      [&] {
        const std::string key = lock_key(name);
        const std::string value = trim(cluster.command(cluster.port_of_key(key), {"GET", key}));
        return value.size() == 32;
      },
      timeout);
}

std::string url_of(int port) { return fmt::format("redis://127.0.0.1:{}", port); }

// The words of the man page's `user rlock …` ACL line after "user", the password filled in:
// the arguments of ACL SETUSER.
std::vector<std::string> minimal_acl(const std::string& password) {
  std::ifstream man(source_dir() + "/man/rlock.1.adoc");
  std::string line;
  while (std::getline(man, line)) {
    if (!line.starts_with("user rlock on >PASSWORD ")) continue;
    std::istringstream words(line.substr(5));
    std::vector<std::string> argv{"ACL", "SETUSER"};
    for (std::string word; words >> word;) argv.push_back(word == ">PASSWORD" ? ">" + password : word);
    return argv;
  }
  FAIL("man/rlock.1.adoc has no 'user rlock on >PASSWORD …' line");
  return {};
}

} // namespace

TEST_CASE("cluster: locks in all three shards from one seed, and status lists them all") {
  ClusterFixture cluster;
  const std::vector<int> masters = cluster.master_ports();
  REQUIRE(masters.size() == 3);
  const std::vector<std::string> names = cluster.lock_names_in_each_shard();
  REQUIRE(names.size() == 3);

  SUBCASE("redis+cluster:// with every seed") {
    const std::string url = cluster.seed_url();
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < names.size(); ++i) {
      RunResult taken = run_rlock({"--url", url, "acquire", "--lease", "--ttl", "60s", names[i]});
      REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
      tokens.push_back(trim(taken.out));
      // The lock lives on the master of its slot, not on the seed.
      CHECK(trim(cluster.command(masters[i], {"GET", lock_key(names[i])})) == tokens.back());
    }
    RunResult status = run_rlock({"--url", url, "status"});
    REQUIRE_MESSAGE(status.exit_code == 0, status.describe());
    for (const std::string& name : names) CHECK_MESSAGE(contains(status.out, name + ": held by"), status.out);
    RunResult json = run_rlock({"--url", url, "status", "--json"});
    REQUIRE_MESSAGE(json.exit_code == 0, json.describe());
    for (const std::string& name : names) CHECK(contains(json.out, "\"" + name + "\""));
    for (std::size_t i = 0; i < names.size(); ++i) {
      RunResult released = run_rlock({"--url", url, "release", names[i], "--token", tokens[i]});
      CHECK_MESSAGE(released.exit_code == 0, released.describe());
      CHECK(trim(cluster.command(masters[i], {"EXISTS", lock_key(names[i])})) == "0");
    }
  }

  SUBCASE("one seed that serves none of them") {
    const std::string url = fmt::format("redis+cluster://127.0.0.1:{}", cluster.replica_ports().at(0));
    for (const std::string& name : names) {
      RunResult ran = run_rlock({"--url", url, "exec", name, "--", "true"});
      CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
    }
  }

  SUBCASE("a plain redis:// seed turns to cluster routing at its first MOVED") {
    const std::string url = url_of(masters[0]);
    for (std::size_t i = 0; i < names.size(); ++i) {
      RunResult ran = run_rlock({"-v", "--url", url, "exec", names[i], "--", "true"});
      CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
      // Its own shard's lock needs no redirect; the others' do, and -v says so.
      CHECK_MESSAGE(contains(ran.err, "is a Redis Cluster node") == (i != 0), ran.err);
    }
    std::vector<std::string> tokens;
    for (const std::string& name : names) {
      RunResult taken = run_rlock({"--url", url, "acquire", "--lease", "--ttl", "60s", name});
      REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
      tokens.push_back(trim(taken.out));
    }
    // SCAN gives no MOVED: status asks the seed whether it is a cluster node.
    RunResult status = run_rlock({"--url", url_of(masters[1]), "status"});
    REQUIRE_MESSAGE(status.exit_code == 0, status.describe());
    for (const std::string& name : names) CHECK_MESSAGE(contains(status.out, name + ": held by"), status.out);
    for (std::size_t i = 0; i < names.size(); ++i) {
      RunResult released = run_rlock({"--url", url, "release", names[i], "--token", tokens[i]});
      CHECK_MESSAGE(released.exit_code == 0, released.describe());
    }
  }

  SUBCASE("a cluster has only database 0") {
    // names[1] lives on another master: the redirect comes, and /1 cannot follow it.
    RunResult ran = run_rlock({"--url", url_of(masters[0]) + "/1", "exec", names[1], "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 78, ran.describe());
    CHECK(std::count(ran.err.begin(), ran.err.end(), '\n') == 1);
    RunResult given = run_rlock({"--url", cluster.seed_url() + "?db=1", "exec", names[1], "--", "true"});
    CHECK_MESSAGE(given.exit_code == 78, given.describe());
  }
}

TEST_CASE("cluster: --min-replicas 1 waits for the replica of each lock's own shard") {
  ClusterFixture cluster;
  const std::vector<int> masters = cluster.master_ports();
  const std::vector<std::string> names = cluster.lock_names_in_each_shard();
  REQUIRE(names.size() == 3);
  const std::string url = cluster.seed_url();
  for (const std::string& name : names) {
    RunResult ran = run_rlock({"--url", url, "exec", name, "--min-replicas", "1", "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
  }
  // The replica of the first shard stops: only that shard's locks go unacknowledged.
  const std::vector<int> replicas = cluster.replicas_of(masters[0]);
  REQUIRE(replicas.size() == 1);
  cluster.node(replicas[0]).pause();
  RunResult refused = run_rlock({"--url", url, "acquire", names[0], "--lease", "-n", "--min-replicas", "1"});
  CHECK_MESSAGE(refused.exit_code == 69, refused.describe());
  CHECK(contains(refused.err, "only 0 of 1 replicas acknowledged acquiring " + lock_key(names[0])));
  CHECK(trim(cluster.command(masters[0], {"EXISTS", lock_key(names[0])})) == "0");
  RunResult elsewhere = run_rlock({"--url", url, "exec", names[1], "--min-replicas", "1", "--", "true"});
  CHECK_MESSAGE(elsewhere.exit_code == 0, elsewhere.describe());
  cluster.node(replicas[0]).resume();
}

TEST_CASE("cluster: redis+cluster:// at a server that is no cluster node exits 78") {
  RedisServer server;
  RunResult ran =
      run_rlock({"--url", fmt::format("redis+cluster://127.0.0.1:{}", server.port()), "exec", "x", "--", "true"});
  CHECK_MESSAGE(ran.exit_code == 78, ran.describe());
  CHECK(contains(ran.err, "not a cluster node"));
}

TEST_CASE("cluster: a held exec and blocked waiters ride out CLUSTER FAILOVER, in their order") {
  ClusterFixture cluster;
  const std::string name = cluster.lock_names_in_each_shard().at(1);
  const int master = cluster.port_of_key(lock_key(name));
  const std::vector<int> replicas = cluster.replicas_of(master);
  REQUIRE(replicas.size() == 1);
  const std::string url = cluster.seed_url();
  TempDir dir;
  const std::string order = dir.file("order");
  auto waiting = [&](const std::string& who) {
    return std::vector<std::string>{rlock_bin(), "-v", "--url", url,  "exec",
                                    name,        "--", "sh",    "-c", "echo " + who + " >>" + order};
  };
  auto in_line = [&](int port, const std::string& count) {
    return wait_until([&] { return trim(cluster.command(port, {"ZCARD", lock_key(name) + ":line"})) == count; }, 20s);
  };

  // TTL 3s: renewals every second, several of them across the failover.
  BackgroundProcess holder({rlock_bin(), "-v", "--url", url, "exec", "--ttl", "3s", name, "--", "sleep", "6"});
  REQUIRE(wait_held(cluster, name));
  // Two waiters in line, blocked on the master, before the failover starts.
  BackgroundProcess first(waiting("first"));
  REQUIRE(in_line(master, "1"));
  BackgroundProcess second(waiting("second"));
  REQUIRE(in_line(master, "2"));

  cluster.failover(replicas[0]);
  CHECK(cluster.port_of_key(lock_key(name)) == replicas[0]);

  const int held = holder.wait(60s);
  CHECK_MESSAGE(held == 0, "holder: ", holder.err());
  CHECK_MESSAGE(first.wait(60s) == 0, "first: ", first.err());
  CHECK_MESSAGE(second.wait(60s) == 0, "second: ", second.err());
  // Each kept its place in line on the promoted replica.
  CHECK(read_file(order) == "first\nsecond\n");
  // The lock is free on the new master once all are done.
  CHECK(trim(cluster.command(replicas[0], {"EXISTS", lock_key(name)})) == "0");
}

TEST_CASE("cluster: a held exec survives its master's crash when the replica takes over in time") {
  ClusterFixture cluster;
  const std::string name = cluster.lock_names_in_each_shard().at(0);
  const int master = cluster.port_of_key(lock_key(name));
  const std::vector<int> replicas = cluster.replicas_of(master);
  REQUIRE(replicas.size() == 1);

  // TTL 10s: the replica is elected (cluster-node-timeout 1.5 s, then a vote) well within it.
  BackgroundProcess holder(
      {rlock_bin(), "-v", "--url", cluster.seed_url(), "exec", "--ttl", "10s", name, "--", "sleep", "9"});
  REQUIRE(wait_held(cluster, name));
  // The grant has reached the replica before the crash (replication is asynchronous).
  REQUIRE(wait_until([&] { return trim(cluster.command(replicas[0], {"DBSIZE"})) != "0"; }, 10s));
  cluster.kill(master);
  // Until the vote, no running master serves the slot.
  REQUIRE(wait_until(
      [&] {
        try {
          return cluster.port_of_key(lock_key(name)) == replicas[0];
        } catch (const SupportError&) {
          return false;
        }
      },
      30s));
  const int held = holder.wait(60s);
  CHECK_MESSAGE(held == 0, "holder: ", holder.err());
  CHECK(trim(cluster.command(replicas[0], {"EXISTS", lock_key(name)})) == "0");
}

TEST_CASE("cluster: a shard whose master dies with no replica: a held exec exits 76, acquire 69") {
  ClusterOptions options;
  options.replicas_per_master = 0;
  ClusterFixture cluster(options);
  const std::vector<std::string> names = cluster.lock_names_in_each_shard();
  const std::string name = names.at(2);
  const std::string bystander = names.at(0); // on a master that stays up
  const int master = cluster.port_of_key(lock_key(name));
  const int survivor = cluster.port_of_key(lock_key(bystander));
  const std::string url = cluster.seed_url();

  BackgroundProcess holder({rlock_bin(), "--url", url, "exec", "--ttl", "2s", name, "--", "sleep", "60"});
  // With cluster-require-full-coverage (the default), the other masters refuse every command
  // with CLUSTERDOWN once they see the shard gone: a lock held there is lost too, by 76.
  BackgroundProcess other({rlock_bin(), "-v", "--url", url, "exec", "--ttl", "3s", bystander, "--", "sleep", "60"});
  REQUIRE(wait_held(cluster, name));
  REQUIRE(wait_held(cluster, bystander));
  cluster.kill(master);
  // Stopped at the lease's safety deadline (under 2 s after the last renewal), never 70.
  const int held = holder.wait(30s);
  CHECK_MESSAGE(held == 76, "holder: ", holder.err());
  CHECK(contains(holder.err(), "lost lock"));
  REQUIRE(wait_until(
      [&] {
        return contains(cluster.command(survivor, {"CLUSTER", "INFO"}), "cluster_state:fail");
      },
      30s));
  const int bystood = other.wait(30s);
  CHECK_MESSAGE(bystood == 76, "bystander: ", other.err());
  CHECK_MESSAGE(contains(other.err(), "CLUSTERDOWN"), other.err());

  RunResult acquire = run_rlock({"--url", url, "--connect-timeout", "1s", "acquire", "--lease", name});
  CHECK_MESSAGE(acquire.exit_code == 69, acquire.describe());
  RunResult exec = run_rlock({"--url", url, "--connect-timeout", "1s", "exec", "-w", "1s", name, "--", "true"});
  CHECK_MESSAGE(exec.exit_code == 69, exec.describe());
  // A live master's lock, while the cluster is down: asked again within the budget, then 69.
  RunResult down = run_rlock({"--url", url, "--connect-timeout", "1s", "acquire", "--lease", bystander});
  CHECK_MESSAGE(down.exit_code == 69, down.describe());
  CHECK_MESSAGE(contains(down.err, "CLUSTERDOWN"), down.err);
}

TEST_CASE("cluster: ASK while a slot migrates by hand") {
  ClusterOptions options;
  options.replicas_per_master = 0;
  ClusterFixture cluster(options);
  const std::vector<int> masters = cluster.master_ports();
  const std::string name = cluster.lock_names_in_each_shard().at(0);
  const std::string key = lock_key(name);
  const int source = masters[0];
  const int target = masters[1];
  const std::string slot = std::to_string(key_slot(key));
  const std::string url = cluster.seed_url();
  const std::string source_id = trim(cluster.command(source, {"CLUSTER", "MYID"}));
  const std::string target_id = trim(cluster.command(target, {"CLUSTER", "MYID"}));

  {
    // A migration half set up: the source sends the keys it lacks to the target (ASK), which is
    // not importing the slot and sends them back (MOVED), for ever. rlock gives up after 5
    // redirects in a row: 69, never 70, nor a loop until the budget.
    const std::string other = cluster.lock_names_in_each_shard().at(0) + "-loop";
    const std::string other_slot = std::to_string(key_slot(lock_key(other)));
    const int owner = cluster.port_of_key(lock_key(other));
    const int elsewhere = owner == masters[0] ? masters[1] : masters[0];
    const std::string elsewhere_id = trim(cluster.command(elsewhere, {"CLUSTER", "MYID"}));
    REQUIRE(trim(cluster.command(owner, {"CLUSTER", "SETSLOT", other_slot, "MIGRATING", elsewhere_id})) == "OK");
    RunResult looped = run_rlock({"-v", "--url", url, "acquire", "--lease", other});
    CHECK_MESSAGE(looped.exit_code == 69, looped.describe());
    CHECK_MESSAGE(contains(looped.err, "redirected 6 times in a row"), looped.err);
    REQUIRE(trim(cluster.command(owner, {"CLUSTER", "SETSLOT", other_slot, "STABLE"})) == "OK");
    RunResult settled = run_rlock({"--url", url, "exec", other, "--", "true"});
    CHECK_MESSAGE(settled.exit_code == 0, settled.describe());
  }

  RunResult taken = run_rlock({"--url", url, "acquire", "--lease", "--ttl", "60s", name});
  REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
  const std::string token = trim(taken.out);
  REQUIRE(trim(cluster.command(target, {"CLUSTER", "SETSLOT", slot, "IMPORTING", source_id})) == "OK");
  REQUIRE(trim(cluster.command(source, {"CLUSTER", "SETSLOT", slot, "MIGRATING", target_id})) == "OK");
  // Every key of the lock moves to the target; the source now answers ASK for them.
  const std::string target_port = std::to_string(target);
  REQUIRE(trim(cluster.command(source, {"MIGRATE", "127.0.0.1", target_port, "", "0", "5000", "KEYS", key,
                                        key + ":meta", key + ":fence"})) == "OK");
  CHECK(trim(cluster.command(source, {"CLUSTER", "COUNTKEYSINSLOT", slot})) == "0");

  // The renewal touches the lock and its meta, both on the target: ASKING, then served there.
  RunResult renewed = run_rlock({"-v", "--url", url, "renew", name, "--token", token, "--ttl", "50s"});
  CHECK_MESSAGE(renewed.exit_code == 0, renewed.describe());
  CHECK_MESSAGE(contains(renewed.err, "ASK " + slot), renewed.err);

  // The migration ends: MOVED from the source, then the target serves the slot.
  for (int port : masters) {
    REQUIRE(trim(cluster.command(port, {"CLUSTER", "SETSLOT", slot, "NODE", target_id})) == "OK");
  }
  // The renewal took on the target: 50 s, not the 60 s of the acquire.
  const std::string pttl = trim(cluster.command(target, {"PTTL", key}));
  CHECK_MESSAGE(std::stoll(pttl) <= 50'000, pttl);
  RunResult status = run_rlock({"--url", url, "status", name});
  CHECK_MESSAGE(status.exit_code == 0, status.describe());
  CHECK(contains(status.out, name + ": held by"));
  RunResult released = run_rlock({"--url", url, "release", name, "--token", token});
  CHECK_MESSAGE(released.exit_code == 0, released.describe());
  CHECK(trim(cluster.command(target, {"EXISTS", key})) == "0");
}

TEST_CASE("cluster over TLS: each node verified against the host name it announces") {
  ClusterOptions options;
  options.replicas_per_master = 0;
  options.tls = true;
  options.announce_hostname = true;
  ClusterFixture cluster(options);
  const std::vector<std::string> names = cluster.lock_names_in_each_shard();
  const std::string url = cluster.seed_url("?cacert=" + tls_cert("ca.crt"), "localhost");
  for (const std::string& name : names) {
    RunResult ran = run_rlock({"-v", "--url", url, "exec", name, "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
    CHECK_MESSAGE(contains(ran.err, "TLS"), ran.err);
  }
  std::vector<std::string> tokens;
  for (const std::string& name : names) {
    RunResult taken = run_rlock({"--url", url, "acquire", "--lease", "--ttl", "60s", name});
    REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
    tokens.push_back(trim(taken.out));
  }
  RunResult status = run_rlock({"--url", url, "status"});
  CHECK_MESSAGE(status.exit_code == 0, status.describe());
  for (const std::string& name : names) CHECK_MESSAGE(contains(status.out, name + ": held by"), status.out);
  // A name no certificate carries, for every node: 78 naming it, never 70.
  RunResult wrong = run_rlock({"--url", url, "--tls-server-name", "other.example", "exec", names[0], "--", "true"});
  CHECK_MESSAGE(wrong.exit_code == 78, wrong.describe());
  CHECK(contains(wrong.err, "other.example"));
}

TEST_CASE("cluster over TLS: a node announced by an IP its certificate lacks: 78 with both fixes") {
  // One node owning every slot, listening on 127.0.0.1 and 127.0.0.2 and announcing the latter,
  // which server.crt (DNS:localhost, IP:127.0.0.1) does not name. The seed, dialled as
  // localhost, passes; the node the map names does not.
  RedisServerOptions options;
  options.tls_cert = tls_cert("server.crt");
  options.tls_key = tls_cert("server.key");
  options.tls_ca = tls_cert("ca.crt");
  options.extra_config = {"bind 127.0.0.1 127.0.0.2", "cluster-enabled yes", "tls-cluster yes",
                          "cluster-announce-ip 127.0.0.2", fmt::format("cluster-port {}", free_port())};
  RedisServer node(options);
  REQUIRE(trim(node.command({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"})) == "OK");
  REQUIRE(wait_until([&] { return contains(node.command({"CLUSTER", "INFO"}), "cluster_state:ok"); }, 20s));
  const std::string url = fmt::format("rediss+cluster://localhost:{}?cacert={}", node.tls_port(), tls_cert("ca.crt"));

  RunResult refused = run_rlock({"--url", url, "exec", "x", "--", "true"});
  CHECK_MESSAGE(refused.exit_code == 78, refused.describe());
  CHECK(std::count(refused.err.begin(), refused.err.end(), '\n') == 1);
  CHECK_MESSAGE(contains(refused.err, "127.0.0.2"), refused.err);
  CHECK_MESSAGE(contains(refused.err, "cluster-announce-hostname"), refused.err);
  CHECK_MESSAGE(contains(refused.err, "cluster-preferred-endpoint-type hostname"), refused.err);
  CHECK_MESSAGE(contains(refused.err, "--tls-server-name"), refused.err);

  SUBCASE("fixed with --tls-server-name") {
    RunResult ran = run_rlock({"--url", url, "--tls-server-name", "localhost", "exec", "x", "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
  }
  SUBCASE("fixed by announcing a host name") {
    REQUIRE(trim(node.command({"CONFIG", "SET", "cluster-announce-hostname", "localhost"})) == "OK");
    REQUIRE(trim(node.command({"CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"})) == "OK");
    RunResult ran = run_rlock({"-v", "--url", url, "exec", "x", "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
  }
  SUBCASE("or by the host name alone: dialled by its IP, checked against its name") {
    REQUIRE(trim(node.command({"CONFIG", "SET", "cluster-announce-hostname", "localhost"})) == "OK");
    RunResult ran = run_rlock({"--url", url, "exec", "x", "--", "true"});
    CHECK_MESSAGE(ran.exit_code == 0, ran.describe());
  }
}

TEST_CASE("cluster: the man page's minimal ACL is enough, redirects and ASK included") {
  ClusterOptions options;
  options.replicas_per_master = 0;
  ClusterFixture cluster(options);
  const std::vector<int> masters = cluster.master_ports();
  const std::string password = "acl-user-pw-42";
  for (int port : masters) REQUIRE(trim(cluster.command(port, minimal_acl(password))) == "OK");
  const std::vector<std::string> names = cluster.lock_names_in_each_shard();
  const std::string url = fmt::format("redis+cluster://rlock:{}@127.0.0.1:{}", password, masters[0]);
  const std::string plain = fmt::format("redis://rlock:{}@127.0.0.1:{}", password, masters[0]);
  auto rlock = [&](const std::string& at, std::vector<std::string> args) {
    args.insert(args.begin(), {"-v", "--url", at});
    RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK_FALSE(contains(result.err, "NOPERM"));
    return result;
  };
  for (const std::string& name : names) {
    CHECK(rlock(url, {"exec", name, "--ttl", "300ms", "--", "sleep", "0.4"}).exit_code == 0);
    CHECK(rlock(plain, {"exec", name, "--", "true"}).exit_code == 0); // MOVED, then CLUSTER SHARDS
  }
  // The audit log lives in the lock's slot, beside its other keys; `log` finds it from any seed.
  for (const std::string& name : {names[0], names[2]}) {
    CHECK(rlock(plain, {"--audit", "exec", name, "--", "true"}).exit_code == 0);
    CHECK(trim(cluster.command(cluster.port_of_key(lock_key(name)), {"XLEN", lock_key(name) + ":log"})) == "2");
    const RunResult log = rlock(plain, {"log", name});
    CHECK(log.exit_code == 0);
    CHECK(split_lines(log.out).size() == 2);
  }
  const std::string token = trim(rlock(url, {"acquire", names[1], "--lease", "--ttl", "60s"}).out);
  CHECK(token.size() == 32);
  CHECK(rlock(plain, {"status"}).exit_code == 0);
  CHECK(rlock(url, {"status", names[1], "--json"}).exit_code == 0);

  // ASKING: the lock's keys moved to another master, the slot still migrating.
  const std::string key = lock_key(names[1]);
  const std::string slot = std::to_string(key_slot(key));
  const int source = masters[1];
  const int target = masters[2];
  const std::string source_id = trim(cluster.command(source, {"CLUSTER", "MYID"}));
  const std::string target_id = trim(cluster.command(target, {"CLUSTER", "MYID"}));
  REQUIRE(trim(cluster.command(target, {"CLUSTER", "SETSLOT", slot, "IMPORTING", source_id})) == "OK");
  REQUIRE(trim(cluster.command(source, {"CLUSTER", "SETSLOT", slot, "MIGRATING", target_id})) == "OK");
  REQUIRE(trim(cluster.command(source, {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0", "5000", "KEYS", key,
                                        key + ":meta", key + ":fence"})) == "OK");
  RunResult renewed = rlock(url, {"renew", names[1], "--token", token});
  CHECK(renewed.exit_code == 0);
  CHECK_MESSAGE(contains(renewed.err, "ASK " + slot), renewed.err);
  for (int port : masters) {
    REQUIRE(trim(cluster.command(port, {"CLUSTER", "SETSLOT", slot, "NODE", target_id})) == "OK");
  }
  CHECK(rlock(url, {"release", names[1], "--token", token}).exit_code == 0);
}
