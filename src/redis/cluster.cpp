// SPDX-License-Identifier: MIT
// ClusterTopology: the slot map, redirects, and the nodes' connections.
#include "redis/cluster.hpp"

#include "redis/tls.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace rlock::redis {

namespace {

std::string address(const Connection& connection) {
  const Endpoint& endpoint = connection.options().endpoint;
  if (endpoint.kind == Endpoint::Kind::unix_socket) return endpoint.path;
  return fmt::format("{}:{}", endpoint.host, endpoint.port);
}

bool mentions(std::string_view text, std::string_view part) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find(part) != std::string::npos;
}

} // namespace

ClusterTopology::ClusterTopology(ConnectOptions options, Start start)
    : m_options(std::move(options)), m_by_slot(start == Start::cluster) {
  // The slot table (128 KiB) only once routing is by slot: a plain redis:// URL, which is
  // detected here and is most often no cluster, never pays for it.
  if (m_by_slot) m_slots.assign(k_cluster_slots, nullptr);
  if (start == Start::detect) {
    m_seed_connection = std::make_unique<Connection>(m_options);
    m_seed = m_seed_connection.get();
    return;
  }
  if (m_options.endpoint.seeds.empty())
    m_options.endpoint.seeds.push_back({m_options.endpoint.host, m_options.endpoint.port});
  for (const HostPort& seed : m_options.endpoint.seeds) node(seed.host, seed.port, seed.host, true);
}

Connection& ClusterTopology::node(const std::string& host, int port, const std::string& given_name, bool seed) {
  // The name matters only where it is checked.
  const TlsSettings& wanted = m_options.endpoint.tls;
  const std::string& name = wanted.enabled && wanted.server_name.empty() ? given_name : host;
  auto key = std::make_tuple(host, port, name);
  auto found = m_nodes.find(key);
  if (found != m_nodes.end()) {
    found->second.seed = found->second.seed || seed;
    return *found->second.connection;
  }
  ConnectOptions options = m_options;
  Endpoint& endpoint = options.endpoint;
  endpoint.kind = Endpoint::Kind::tcp;
  endpoint.routing = Routing::single;
  endpoint.path.clear();
  endpoint.seeds.clear();
  endpoint.host = host;
  endpoint.port = port;
  endpoint.db = 0;
  TlsSettings& tls = endpoint.tls;
  if (tls.enabled && tls.server_name.empty()) {
    // Checked against the name the node announces (a host name when it has one), else the
    // address dialled: never one name for every node.
    if (name != host) tls.server_name = name;
    if (!seed && is_ip_literal(name)) {
      tls.mismatch_hint = fmt::format(
          "the cluster announces this node by its IP address {}, which its certificate does not name: "
          "give each node a name its certificate carries with cluster-announce-hostname and set "
          "cluster-preferred-endpoint-type hostname, or set --tls-server-name to a name the certificates carry",
          name);
    }
  }
  Node& made = m_nodes[key];
  made.connection = std::make_unique<Connection>(std::move(options));
  made.seed = seed;
  m_order.push_back(made.connection.get());
  return *made.connection;
}

Connection& ClusterTopology::node_at(const std::string& host, int port) {
  for (auto& [key, known] : m_nodes) {
    if (std::get<0>(key) == host && std::get<1>(key) == port) return *known.connection;
  }
  return node(host, port, host);
}

std::optional<std::vector<SlotRange>> ClusterTopology::read_map(Connection& connection, Deadline by) {
  const bool tls = m_options.endpoint.tls.enabled;
  Reply reply = connection.command({"CLUSTER", "SHARDS"}, by);
  if (!reply.view().is_error()) return parse_cluster_shards(reply.view(), tls);
  ErrorReply error = classify_error(reply.view().string());
  if (mentions(error.text, "unknown subcommand") || mentions(error.text, "unknown command")) {
    // Before Redis 7.
    reply = connection.command({"CLUSTER", "SLOTS"}, by);
    if (!reply.view().is_error()) return parse_cluster_slots(reply.view());
    error = classify_error(reply.view().string());
    if (mentions(error.text, "unknown command")) return std::nullopt;
  }
  if (mentions(error.text, "cluster support disabled")) return std::nullopt;
  if (error.kind == ReplyClass::auth) {
    throw AuthError(fmt::format("Redis at {} refused to give the slot map: {} (rlock on a cluster needs "
                                "+cluster|shards +cluster|slots +asking: see MINIMAL ACL in rlock(1))",
                                address(connection), error.text));
  }
  // LOADING, or anything else: another node may answer.
  throw UnavailableError(fmt::format("{} could not give the slot map: {}", address(connection), error.text));
}

void ClusterTopology::apply(const std::vector<SlotRange>& ranges) {
  m_slots.assign(k_cluster_slots, nullptr);
  for (const SlotRange& range : ranges) {
    Connection& primary = node(range.primary.host, range.primary.port, range.primary.name);
    for (int slot = range.first; slot <= range.last; ++slot) m_slots[static_cast<std::size_t>(slot)] = &primary;
  }
  m_loaded = true;
  m_stale = false;
  m_moved_since_load = 0;
  m_loaded_at = std::chrono::steady_clock::now();
  m_ask.reset();
}

void ClusterTopology::load_map(Deadline by) {
  // Nodes that answered last first, then the seeds, then those whose connection failed.
  std::vector<Connection*> candidates;
  auto add = [&candidates](Connection* connection) {
    if (std::find(candidates.begin(), candidates.end(), connection) == candidates.end()) {
      candidates.push_back(connection);
    }
  };
  for (Connection* connection : m_order) {
    if (!connection->failing()) add(connection);
  }
  for (auto& [key, known] : m_nodes) {
    if (known.seed) add(known.connection.get());
  }
  for (Connection* connection : m_order) add(connection);
  if (m_seed != nullptr) add(m_seed);

  std::string last_failure;
  std::size_t tried = 0;
  for (Connection* candidate : candidates) {
    ++tried;
    // A share of what is left, so that one node that hangs does not use up the whole budget
    // (a renewal's, say) while others would answer.
    const auto now = std::chrono::steady_clock::now();
    if (now >= by) {
      last_failure = "no time left to ask the others";
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(by - now);
    const auto share = std::max(left / static_cast<long>(candidates.size() - tried + 1), k_min_map_attempt);
    const Deadline attempt = std::min({by, now + share, now + m_options.io_timeout});
    try {
      // A connection with replies still to read (status reading ahead) is left alone: a
      // connection of its own asks instead.
      std::optional<Connection> spare;
      Connection* asked = candidate;
      if (!candidate->idle()) asked = &spare.emplace(candidate->options());
      std::optional<std::vector<SlotRange>> ranges = read_map(*asked, attempt);
      if (!ranges) {
        throw ConfigError(fmt::format("{} is not a cluster node (cluster support is disabled there); for a single "
                                      "server use redis:// instead of redis+cluster://",
                                      address(*candidate)));
      }
      if (ranges->empty()) {
        last_failure = fmt::format("{} knows no primary for any slot", address(*candidate));
        continue;
      }
      apply(*ranges);
      log::verbose("cluster slot map read from {}: {} ranges", address(*candidate), ranges->size());
      return;
    } catch (const UnavailableError& failed) {
      last_failure = failed.what();
    }
  }
  m_loaded_at = std::chrono::steady_clock::now();
  throw UnavailableError(
      fmt::format("could not read the cluster's slot map from any of {} nodes; the last: {}", tried, last_failure));
}

void ClusterTopology::route_by_slot(std::string_view why) {
  if (m_options.endpoint.db != 0) {
    throw ConfigError(fmt::format("{} is a Redis Cluster node ({}), and a cluster has only database 0: drop /{} "
                                  "from the URL",
                                  m_options.endpoint.redacted(), why, m_options.endpoint.db));
  }
  log::verbose("{} is a Redis Cluster node ({}): routing each lock to its slot's primary from now on",
               m_options.endpoint.redacted(), why);
  m_by_slot = true;
  if (m_slots.empty()) m_slots.assign(k_cluster_slots, nullptr);
  m_stale = true;
  if (m_options.endpoint.kind == Endpoint::Kind::tcp) {
    // The seed is reached as a node of the map by its own connection.
    auto key = std::make_tuple(m_options.endpoint.host, m_options.endpoint.port, m_options.endpoint.host);
    Node& seed = m_nodes[key];
    if (!seed.connection) {
      seed.connection = std::move(m_seed_connection);
      m_order.push_back(seed.connection.get());
    }
    seed.seed = true;
  }
}

Connection& ClusterTopology::node_for(std::string_view key, Deadline by) {
  if (!m_by_slot) return *m_seed;
  if (!m_loaded || m_stale) load_map(by);
  const int slot = key_slot(key);
  if (m_ask && m_ask->slot == slot) {
    // Once: the next command for this slot, then the map again.
    if (!m_ask->armed) {
      m_ask->armed = true;
      m_ask->target->ask_next();
      return *m_ask->target;
    }
    if (m_ask->target->asking_pending()) return *m_ask->target;
    m_ask.reset();
  }
  auto since_load = std::chrono::steady_clock::now() - m_loaded_at;
  Connection* primary = m_slots[static_cast<std::size_t>(slot)];
  if ((primary == nullptr || primary->failing()) && since_load >= k_reload_interval) {
    try {
      load_map(by);
    } catch (const UnavailableError& failed) {
      if (primary == nullptr) throw;
      log::verbose("{}", failed.what()); // ask the node the old map names
    }
    primary = m_slots[static_cast<std::size_t>(slot)];
  }
  if (primary == nullptr) {
    throw UnavailableError(
        fmt::format("no primary of the cluster serves slot {} (of key {}) now", slot, printable(key)));
  }
  return *primary;
}

void ClusterTopology::each_primary(const std::function<void(Connection&)>& visit) {
  if (!m_by_slot) {
    if (m_options.endpoint.kind == Endpoint::Kind::tcp && m_options.endpoint.db == 0) {
      // SCAN gives no MOVED: ask whether the server is a cluster node. Any failure says no (an
      // error reply, such as NOPERM under an ACL without CLUSTER, or a proxy's refusal); a
      // connection that failed fails the SCAN after it too.
      std::optional<std::vector<SlotRange>> ranges;
      try {
        ranges = read_map(*m_seed, std::chrono::steady_clock::now() + m_options.io_timeout);
      } catch (const Error& error) {
        log::verbose("not asking for a cluster's slot map: {}", error.what());
      }
      if (ranges && !ranges->empty()) {
        route_by_slot("it answers CLUSTER SHARDS");
        apply(*ranges);
      }
    }
    if (!m_by_slot) {
      visit(*m_seed);
      return;
    }
  } else {
    load_map(std::chrono::steady_clock::now() + m_options.io_timeout); // the primaries as they are now
  }
  std::vector<Connection*> primaries;
  for (Connection* primary : m_slots) {
    if (primary != nullptr && std::find(primaries.begin(), primaries.end(), primary) == primaries.end()) {
      primaries.push_back(primary);
    }
  }
  for (Connection* primary : primaries) visit(*primary);
}

void ClusterTopology::refresh(const ErrorReply& reason) {
  if (!m_by_slot) {
    if (reason.kind != ReplyClass::redirect) {
      // As SingleNode: connect again, resolving the name again.
      log::verbose("reconnecting: {}", reason.text);
      m_seed->disconnect();
      return;
    }
    route_by_slot(fmt::format("it answered {}", reason.text));
  }
  std::string host;
  int port = 0;
  if (reason.kind != ReplyClass::redirect || reason.slot < 0 || reason.slot >= k_cluster_slots ||
      !split_host_port(reason.target, host, port)) {
    // READONLY (a primary demoted), or a redirect to an endpoint the node does not know
    // ("MOVED 3999 :6381"): the whole map again.
    m_stale = true;
    return;
  }
  const int slot = static_cast<int>(reason.slot);
  Connection& target = node_at(host, port);
  if (reason.ask) {
    m_ask = Ask{slot, &target, false};
    return;
  }
  if (m_ask && m_ask->slot == slot) m_ask.reset();
  m_slots[static_cast<std::size_t>(slot)] = &target;
  // One slot moved: that one only. Another move before the map is read again: a failover or a
  // resharding, so read all of it.
  if (++m_moved_since_load > 1) m_stale = true;
}

void ClusterTopology::disconnect() noexcept {
  for (auto& [key, known] : m_nodes) known.connection->disconnect();
  if (m_seed_connection) m_seed_connection->disconnect();
}

} // namespace rlock::redis
