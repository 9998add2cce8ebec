// SPDX-License-Identifier: MIT
// make_topology: the Topology a URL asks for.
#include "redis/topology.hpp"

#include "redis/cluster.hpp"
#include "redis/sentinel.hpp"

namespace rlock::redis {

std::unique_ptr<Topology> make_topology(const ConnectOptions& options) {
  switch (options.endpoint.routing) {
  case Routing::single: break;
  case Routing::sentinel: return std::make_unique<SentinelTopology>(options);
  case Routing::cluster: return std::make_unique<ClusterTopology>(options, ClusterTopology::Start::cluster);
  }
  // A plain URL may name a cluster node: it says so with its first MOVED.
  return std::make_unique<ClusterTopology>(options, ClusterTopology::Start::detect);
}

} // namespace rlock::redis
