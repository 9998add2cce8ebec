// SPDX-License-Identifier: MIT
// ClusterFixture: node configs, `redis-cli --cluster create`, CLUSTER NODES views and waits.
#include "cluster_fixture.hpp"

#include "tls_support.hpp"
#include "topology_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>

namespace rlock::test {

namespace {

constexpr int k_masters = 3;
constexpr int k_slots = 16384;

// CRC16-CCITT (XModem), as Redis Cluster hashes keys.
std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (char c : data) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<unsigned char>(c) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc =
          (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

// The masters serving slots as "PORT:ranges", sorted: equal on nodes that agree.
std::string slot_map_signature(const std::vector<ClusterNode>& view) {
  std::vector<std::string> entries;
  for (const auto& node : view) {
    if (!node.is_master() || node.failed() || node.slots.empty()) continue;
    std::string entry = std::to_string(node.port);
    for (const auto& [first, last] : node.slots) entry += fmt::format(" {}-{}", first, last);
    entries.push_back(entry);
  }
  std::sort(entries.begin(), entries.end());
  return fmt::format("{}", fmt::join(entries, ", "));
}

} // namespace

bool ClusterNode::is_master() const { return flags.find("master") != std::string::npos; }

bool ClusterNode::failed() const { return flags.find("fail") != std::string::npos; }

int key_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) % k_slots;
}

std::vector<ClusterNode> parse_cluster_nodes(const std::string& text) {
  std::vector<ClusterNode> nodes;
  for (const auto& line : split_reply(text)) {
    std::istringstream fields(line);
    ClusterNode node;
    std::string address, ping, pong, epoch, link;
    if (!(fields >> node.id >> address >> node.flags >> node.master_id >> ping >> pong >> epoch >> link)) continue;
    node.connected = link == "connected";
    // ip:port@cport[,hostname]
    const auto comma = address.find(',');
    if (comma != std::string::npos) node.hostname = address.substr(comma + 1);
    const auto colon = address.rfind(':', comma);
    node.ip = address.substr(0, colon);
    node.port = std::atoi(address.c_str() + colon + 1);
    std::string slot;
    while (fields >> slot) {
      if (slot.starts_with("[")) continue; // a slot being imported or migrated
      const auto dash = slot.find('-');
      const int first = std::stoi(slot.substr(0, dash));
      node.slots.emplace_back(first, dash == std::string::npos ? first : std::stoi(slot.substr(dash + 1)));
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

ClusterFixture::ClusterFixture(ClusterOptions options) : m_options(std::move(options)) {
  if (m_options.replicas_per_master < 0 || m_options.replicas_per_master > 1) {
    throw SupportError("ClusterFixture: 0 or 1 replicas per master");
  }
  const int count = k_masters * (1 + m_options.replicas_per_master);
  for (int i = 0; i < count; ++i) {
    RedisServerOptions node_options;
    node_options.password = m_options.password;
    auto& config = node_options.extra_config;
    config = {"cluster-enabled yes", "cluster-config-file nodes.conf",
              fmt::format("cluster-node-timeout {}", m_options.node_timeout_ms),
              // The default bus port, port + 10000, may be past 65535 or taken.
              fmt::format("cluster-port {}", free_port())};
    if (!m_options.password.empty()) config.push_back(fmt::format("masterauth \"{}\"", m_options.password));
    if (m_options.announce_hostname) {
      config.insert(config.end(), {"bind 127.0.0.1 -::1", "cluster-announce-hostname localhost",
                                   "cluster-preferred-endpoint-type hostname"});
    }
    if (m_options.tls) {
      node_options.tls_cert = tls_cert("server.crt");
      node_options.tls_key = tls_cert("server.key");
      node_options.tls_ca = tls_cert("ca.crt");
      // The cluster bus always asks for a client certificate, and server.crt is for servers only.
      config.insert(config.end(), {"tls-cluster yes", "tls-replication yes",
                                   fmt::format("tls-client-cert-file \"{}\"", tls_cert("client.crt")),
                                   fmt::format("tls-client-key-file \"{}\"", tls_cert("client.key"))});
    }
    m_nodes.push_back(std::make_unique<RedisServer>(node_options));
  }
  std::vector<std::string> argv{redis_cli_bin()};
  if (!m_options.password.empty()) argv.insert(argv.end(), {"--no-auth-warning", "-a", m_options.password});
  argv.insert(argv.end(), {"--cluster", "create"});
  for (const auto& node : m_nodes) argv.push_back(fmt::format("127.0.0.1:{}", node->port()));
  argv.insert(argv.end(), {"--cluster-replicas", std::to_string(m_options.replicas_per_master), "--cluster-yes"});
  RunOptions run_options;
  run_options.timeout = 60s;
  const RunResult created = run_program(argv, run_options);
  if (created.exit_code != 0) fail("redis-cli --cluster create failed: " + created.describe());
  wait_ok();
}

ClusterFixture::~ClusterFixture() {
  for (auto& node : m_nodes) node->kill();
}

std::vector<RedisServer*> ClusterFixture::nodes() {
  std::vector<RedisServer*> result;
  for (auto& node : m_nodes) result.push_back(node.get());
  return result;
}

RedisServer& ClusterFixture::node(int port) {
  for (auto& node : m_nodes) {
    if (node->port() == port || (node->tls_port() != 0 && node->tls_port() == port)) return *node;
  }
  throw SupportError(fmt::format("ClusterFixture: no node on port {}", port));
}

int ClusterFixture::plain_port(int announced_port) { return node(announced_port).port(); }

std::string ClusterFixture::command(int port, const std::vector<std::string>& argv) { return node(port).command(argv); }

std::vector<ClusterNode> ClusterFixture::view() {
  for (auto& node : m_nodes) {
    if (node->running()) return parse_cluster_nodes(node->command({"CLUSTER", "NODES"}));
  }
  throw SupportError("ClusterFixture: no node running");
}

std::vector<int> ClusterFixture::master_ports() {
  std::vector<ClusterNode> masters;
  for (auto& node : view()) {
    if (node.is_master() && !node.failed() && !node.slots.empty()) masters.push_back(std::move(node));
  }
  std::sort(masters.begin(), masters.end(), [](const auto& a, const auto& b) { return a.slots < b.slots; });
  std::vector<int> ports(masters.size());
  std::transform(masters.begin(), masters.end(), ports.begin(), [this](const auto& m) { return plain_port(m.port); });
  return ports;
}

std::vector<int> ClusterFixture::replica_ports() {
  std::vector<int> ports;
  for (const auto& node : view()) {
    if (!node.is_master() && !node.failed()) ports.push_back(plain_port(node.port));
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

std::vector<int> ClusterFixture::replicas_of(int master_port) {
  const auto nodes = view();
  std::string master_id;
  for (const auto& node : nodes) {
    if (plain_port(node.port) == master_port) master_id = node.id;
  }
  std::vector<int> ports;
  for (const auto& node : nodes) {
    if (!node.failed() && node.master_id == master_id) ports.push_back(plain_port(node.port));
  }
  return ports;
}

int ClusterFixture::master_for_slot(int slot) {
  for (const auto& node : view()) {
    if (!node.is_master() || node.failed()) continue;
    for (const auto& [first, last] : node.slots) {
      if (slot >= first && slot <= last) return plain_port(node.port);
    }
  }
  fail(fmt::format("no master serves slot {}", slot));
}

int ClusterFixture::port_of_key(std::string_view key) { return master_for_slot(key_slot(key)); }

std::string ClusterFixture::lock_name_on(int master_port, std::string_view prefix) {
  for (int i = 0; i < 10000; ++i) {
    std::string name = fmt::format("shard-{}-{}", master_port, i);
    if (port_of_key(fmt::format("{}{{{}}}", prefix, name)) == master_port) return name;
  }
  fail(fmt::format("no lock name found for the master on {}", master_port));
}

std::vector<std::string> ClusterFixture::lock_names_in_each_shard(std::string_view prefix) {
  std::vector<std::string> names;
  for (int port : master_ports()) names.push_back(lock_name_on(port, prefix));
  return names;
}

std::string ClusterFixture::seed_url(const std::string& suffix, const std::string& host) const {
  std::string hosts;
  for (int i = 0; i < k_masters; ++i) {
    const RedisServer& node = *m_nodes[static_cast<std::size_t>(i)];
    hosts += fmt::format("{}{}:{}", i == 0 ? "" : ",", host, m_options.tls ? node.tls_port() : node.port());
  }
  return fmt::format("{}://{}{}", m_options.tls ? "rediss+cluster" : "redis+cluster", hosts, suffix);
}

std::string ClusterFixture::check_ok() {
  std::string signature;
  for (auto& node : m_nodes) {
    if (!node->running()) continue;
    const std::string info = node->command({"CLUSTER", "INFO"});
    if (info_field(info, "cluster_state") != "ok" || info_field(info, "cluster_slots_ok") != std::to_string(k_slots)) {
      return fmt::format("node {}: cluster_state {}, cluster_slots_ok {}", node->port(),
                         info_field(info, "cluster_state"), info_field(info, "cluster_slots_ok"));
    }
    const auto nodes_view = parse_cluster_nodes(node->command({"CLUSTER", "NODES"}));
    if (nodes_view.size() != m_nodes.size()) {
      return fmt::format("node {} knows {} of {} nodes", node->port(), nodes_view.size(), m_nodes.size());
    }
    for (const auto& seen : nodes_view) {
      if (seen.failed() == this->node(seen.port).running()) {
        return fmt::format("node {} sees {} as {}", node->port(), seen.port, seen.flags);
      }
    }
    const std::string mine = slot_map_signature(nodes_view);
    if (!signature.empty() && mine != signature) {
      return fmt::format("node {} maps slots {}, another {}", node->port(), mine, signature);
    }
    signature = mine;
    const std::string replication = node->command({"INFO", "replication"});
    if (info_field(replication, "role") == "slave" && info_field(replication, "master_link_status") != "up") {
      return fmt::format("replica {}: master link {}", node->port(), info_field(replication, "master_link_status"));
    }
  }
  return {};
}

void ClusterFixture::wait_ok(std::chrono::milliseconds timeout) {
  std::string state;
  const bool ok = wait_until(
      [&] {
        try {
          state = check_ok();
        } catch (const std::exception& error) {
          state = error.what();
        }
        return state.empty();
      },
      timeout);
  if (!ok) fail(fmt::format("not ok within {} ms: {}", timeout.count(), state));
}

void ClusterFixture::failover(int replica_port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RedisServer& replica = node(replica_port);
  const std::string role = role_of(replica);
  if (role != "slave") fail(fmt::format("failover: {} is not a replica (ROLE {})", replica_port, role));
  // A manual failover that does not finish in 5 s is abandoned by Redis: ask again.
  while (role_of(replica) != "master") {
    const std::string reply = replica.command({"CLUSTER", "FAILOVER"});
    if (reply != "OK") fail(fmt::format("CLUSTER FAILOVER on {}: {}", replica_port, reply));
    wait_until([&] { return role_of(replica) == "master"; }, 6s);
    if (std::chrono::steady_clock::now() > deadline) fail(fmt::format("{} was not promoted", replica_port));
  }
  wait_ok(std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()),
                   std::chrono::milliseconds(1)));
}

void ClusterFixture::kill(int port) { node(port).kill(); }

void ClusterFixture::start(int port) { node(port).start(); }

std::string ClusterFixture::logs() const {
  std::string text;
  for (const auto& node : m_nodes) text += server_log_tail("cluster node", *node);
  return text;
}

void ClusterFixture::fail(const std::string& what) const {
  throw SupportError(fmt::format("ClusterFixture: {}\n{}", what, logs()));
}

} // namespace rlock::test
