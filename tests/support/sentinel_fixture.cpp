// SPDX-License-Identifier: MIT
// SentinelFixture: configs for the data nodes and the sentinels, readiness and failover waits.
#include "sentinel_fixture.hpp"

#include "tls_support.hpp"
#include "topology_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace rlock::test {

namespace {

// The replicas or sentinels a sentinel lists that it considers up (no s_down, connected).
int healthy_records(const std::string& reply) {
  int count = 0;
  for (const auto& record : reply_records(reply, "name")) {
    const std::string flags = record_field(record, "flags");
    if (flags.find("s_down") == std::string::npos && flags.find("disconnected") == std::string::npos &&
        record_field(record, "master-link-status", "ok") == "ok") {
      ++count;
    }
  }
  return count;
}

} // namespace

SentinelFixture::SentinelFixture(SentinelOptions options) : m_options(std::move(options)) {
  if (m_options.replicas < 1 || m_options.replicas > 2) throw SupportError("SentinelFixture: 1 or 2 replicas");
  if (m_options.tls && m_options.replication_through_proxy) throw SupportError("SentinelFixture: TLS or proxy");
  RedisServerOptions master_options;
  master_options.password = m_options.master_password;
  master_options.extra_config = data_config(0);
  master_options = tls_options(master_options);
  m_servers.push_back(std::make_unique<RedisServer>(master_options));
  const int first_master = named_port(*m_servers[0]);
  for (int i = 0; i < m_options.replicas; ++i) {
    int upstream = first_master;
    if (m_options.replication_through_proxy) {
      m_proxies.push_back(std::make_unique<FaultProxy>(first_master));
      upstream = m_proxies.back()->port();
    }
    RedisServerOptions replica_options = master_options;
    replica_options.extra_config = data_config(upstream);
    replica_options = tls_options(replica_options);
    m_servers.push_back(std::make_unique<RedisServer>(replica_options));
  }
  for (int i = 0; i < 3; ++i) {
    RedisServerOptions sentinel_options;
    sentinel_options.password = m_options.sentinel_password;
    sentinel_options.extra_config = sentinel_config(first_master);
    sentinel_options.extra_args = {"--sentinel"};
    sentinel_options = tls_options(sentinel_options);
    m_sentinels.push_back(std::make_unique<RedisServer>(sentinel_options));
  }
  wait_ready();
}

SentinelFixture::~SentinelFixture() {
  // SIGKILL: nothing to wait for (a master's SIGTERM waits for lagging replicas), and sentinels
  // first, so that none starts a failover while the data nodes go.
  for (auto* group : {&m_sentinels, &m_servers}) {
    for (auto& server : *group) server->kill();
  }
}

std::string SentinelFixture::host() const { return m_options.announce_hostnames ? "localhost" : "127.0.0.1"; }

int SentinelFixture::named_port(const RedisServer& server) const {
  return m_options.tls ? server.tls_port() : server.port();
}

RedisServerOptions SentinelFixture::tls_options(RedisServerOptions options) const {
  if (m_options.tls) {
    options.tls_cert = tls_cert("server.crt");
    options.tls_key = tls_cert("server.key");
    options.tls_ca = tls_cert("ca.crt");
    // Replication, and a sentinel's connections to the nodes and the other sentinels, over TLS.
    options.extra_config.emplace_back("tls-replication yes");
  }
  return options;
}

std::vector<std::string> SentinelFixture::data_config(int master_port) const {
  std::vector<std::string> config;
  if (!m_options.master_password.empty()) config.push_back(fmt::format("masterauth \"{}\"", m_options.master_password));
  if (m_options.announce_hostnames) {
    config.emplace_back("bind 127.0.0.1 -::1"); // "localhost" may be ::1 first
    config.emplace_back("replica-announce-ip localhost");
  }
  if (master_port != 0) config.push_back(fmt::format("replicaof {} {}", host(), master_port));
  return config;
}

std::vector<std::string> SentinelFixture::sentinel_config(int master_port) const {
  std::vector<std::string> config;
  const std::string& name = m_options.master_name;
  if (m_options.announce_hostnames) {
    config.emplace_back("bind 127.0.0.1 -::1");
    config.emplace_back("sentinel resolve-hostnames yes");
    config.emplace_back("sentinel announce-hostnames yes");
    config.emplace_back("sentinel announce-ip localhost");
  }
  if (!m_options.sentinel_password.empty()) {
    config.push_back(fmt::format("requirepass \"{}\"", m_options.sentinel_password));
    config.push_back(fmt::format("sentinel sentinel-pass \"{}\"", m_options.sentinel_password));
  }
  config.push_back(fmt::format("sentinel monitor {} {} {} {}", name, host(), master_port, m_options.quorum));
  config.push_back(fmt::format("sentinel down-after-milliseconds {} 1000", name));
  config.push_back(
      fmt::format("sentinel failover-timeout {} {}", name, m_options.replication_through_proxy ? 60000 : 5000));
  config.push_back(fmt::format("sentinel parallel-syncs {} 2", name));
  if (!m_options.master_password.empty()) {
    config.push_back(fmt::format("sentinel auth-pass {} \"{}\"", name, m_options.master_password));
  }
  return config;
}

std::vector<int> SentinelFixture::sentinel_ports() const {
  std::vector<int> ports;
  for (const auto& sentinel : m_sentinels) ports.push_back(named_port(*sentinel));
  return ports;
}

std::vector<int> SentinelFixture::sentinel_tls_ports() const {
  std::vector<int> ports;
  for (const auto& sentinel : m_sentinels) ports.push_back(sentinel->tls_port());
  return ports;
}

std::string SentinelFixture::url(const std::string& suffix, const std::string& userinfo) const {
  const char* scheme = m_options.tls ? "rediss+sentinel" : "redis+sentinel";
  std::string hosts;
  for (int port : sentinel_ports()) hosts += fmt::format("{}127.0.0.1:{}", hosts.empty() ? "" : ",", port);
  return fmt::format("{}://{}{}/{}{}", scheme, userinfo, hosts, m_options.master_name, suffix);
}

std::string SentinelFixture::sentinel_command(std::size_t index, const std::vector<std::string>& argv) const {
  return m_sentinels.at(index)->command(argv);
}

int SentinelFixture::master_port() const {
  std::string last_error = "no sentinel running";
  for (const auto& sentinel : m_sentinels) {
    if (!sentinel->running()) continue;
    try {
      const auto reply = split_reply(sentinel->command({"SENTINEL", "get-master-addr-by-name", master_name()}));
      if (reply.size() == 2) return std::stoi(reply[1]);
      last_error = fmt::format("sentinel on {}: {}", sentinel->port(), fmt::join(reply, " "));
    } catch (const SupportError& error) {
      last_error = error.what();
    }
  }
  throw SupportError(fmt::format("SentinelFixture: no sentinel names the master ({})", last_error));
}

RedisServer& SentinelFixture::server_on(int port) {
  for (auto& server : m_servers) {
    if (server->port() == port || named_port(*server) == port) return *server;
  }
  throw SupportError(fmt::format("SentinelFixture: no data node on port {}", port));
}

RedisServer& SentinelFixture::master() { return server_on(master_port()); }

std::vector<RedisServer*> SentinelFixture::replicas() {
  const int master = master_port();
  std::vector<RedisServer*> result;
  for (auto& server : m_servers) {
    if (named_port(*server) != master) result.push_back(server.get());
  }
  return result;
}

std::vector<RedisServer*> SentinelFixture::servers() {
  std::vector<RedisServer*> result;
  for (auto& server : m_servers) result.push_back(server.get());
  return result;
}

void SentinelFixture::wait_ready(std::chrono::milliseconds timeout) {
  std::string state;
  const bool ready = wait_until(
      [&] {
        try {
          const int master = master_port();
          const int replicas = static_cast<int>(std::count_if(m_servers.begin(), m_servers.end(), [&](const auto& s) {
            return s->running() && named_port(*s) != master;
          }));
          const int others = static_cast<int>(std::count_if(m_sentinels.begin(), m_sentinels.end(),
                                                            [](const auto& s) { return s->running(); })) -
                             1;
          if (role_of(server_on(master)) != "master") {
            state = fmt::format("the named master {} is not ROLE master", master);
            return false;
          }
          for (const auto& sentinel : m_sentinels) {
            if (!sentinel->running()) continue;
            const auto addr = split_reply(sentinel->command({"SENTINEL", "get-master-addr-by-name", master_name()}));
            const int seen_replicas = healthy_records(sentinel->command({"SENTINEL", "replicas", master_name()}));
            const int seen_others = healthy_records(sentinel->command({"SENTINEL", "sentinels", master_name()}));
            state = fmt::format("sentinel {}: master {}, {} of {} replicas, {} of {} other sentinels", sentinel->port(),
                                fmt::join(addr, ":"), seen_replicas, replicas, seen_others, others);
            if (addr.size() != 2 || std::stoi(addr[1]) != master || seen_replicas != replicas ||
                seen_others != others) {
              return false;
            }
          }
          return true;
        } catch (const std::exception& error) {
          state = error.what();
          return false;
        }
      },
      timeout);
  if (!ready) fail(fmt::format("not ready within {} ms: {}", timeout.count(), state));
}

int SentinelFixture::failover(std::chrono::milliseconds timeout) {
  const int old_master = master_port();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string reply;
  // A sentinel that has not read the replicas' INFO yet says NOGOODSLAVE; one still busy says INPROG.
  while (reply != "OK") {
    for (std::size_t i = 0; i < m_sentinels.size() && reply != "OK"; ++i) {
      if (m_sentinels[i]->running()) reply = sentinel_command(i, {"SENTINEL", "FAILOVER", master_name()});
    }
    if (reply == "OK") break;
    if (std::chrono::steady_clock::now() > deadline) fail("SENTINEL FAILOVER refused: " + reply);
    std::this_thread::sleep_for(100ms);
  }
  return wait_new_master(old_master, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  deadline - std::chrono::steady_clock::now()),
                                              std::chrono::milliseconds(1)));
}

int SentinelFixture::wait_new_master(int old_master, std::chrono::milliseconds timeout) {
  int new_master = 0;
  std::string state;
  const bool moved = wait_until(
      [&] {
        try {
          new_master = 0;
          for (const auto& sentinel : m_sentinels) {
            if (!sentinel->running()) continue;
            const auto addr = split_reply(sentinel->command({"SENTINEL", "get-master-addr-by-name", master_name()}));
            state = fmt::format("sentinel {} names {}", sentinel->port(), fmt::join(addr, ":"));
            const int named = addr.size() == 2 ? std::stoi(addr[1]) : 0;
            if (named == old_master || named == 0 || (new_master != 0 && named != new_master)) return false;
            new_master = named;
          }
          state = fmt::format("the new master {} is not ROLE master yet", new_master);
          return role_of(server_on(new_master)) == "master";
        } catch (const std::exception& error) {
          state = error.what();
          return false;
        }
      },
      timeout);
  if (!moved) fail(fmt::format("no new master in place of {} within {} ms: {}", old_master, timeout.count(), state));
  return new_master;
}

void SentinelFixture::wait_replica_of(int port, int master_port, std::chrono::milliseconds timeout) {
  std::string state;
  const bool ok = wait_until(
      [&] {
        try {
          const std::string info = server_on(port).command({"INFO", "replication"});
          state = fmt::format("role {}, master_port {}, link {}", info_field(info, "role"),
                              info_field(info, "master_port"), info_field(info, "master_link_status"));
          return info_field(info, "role") == "slave" &&
                 info_field(info, "master_port") == std::to_string(master_port) &&
                 info_field(info, "master_link_status") == "up";
        } catch (const std::exception& error) {
          state = error.what();
          return false;
        }
      },
      timeout);
  if (!ok)
    fail(fmt::format("{} did not become a replica of {} within {} ms: {}", port, master_port, timeout.count(), state));
}

void SentinelFixture::kill_sentinel(std::size_t index) { m_sentinels.at(index)->kill(); }

void SentinelFixture::start_sentinel(std::size_t index) {
  RedisServer& sentinel = *m_sentinels.at(index);
  if (sentinel.running()) return;
  sentinel.options().extra_config = sentinel_config(master_port());
  sentinel.start();
}

FaultProxy& SentinelFixture::replication_proxy(std::size_t replica_index) {
  if (replica_index >= m_proxies.size()) throw SupportError("SentinelFixture: no replication proxy (option off?)");
  return *m_proxies[replica_index];
}

std::string SentinelFixture::logs() const {
  std::string text;
  for (const auto& server : m_servers) text += server_log_tail("data node", *server);
  for (const auto& sentinel : m_sentinels) text += server_log_tail("sentinel", *sentinel);
  return text;
}

void SentinelFixture::fail(const std::string& what) const {
  throw SupportError(fmt::format("SentinelFixture: {}\n{}", what, logs()));
}

} // namespace rlock::test
