// SPDX-License-Identifier: MIT
// make_topology: the Topology a URL asks for.
#include "redis/topology.hpp"

#include "redis/cluster.hpp"
#include "util/error.hpp"

namespace rlock::redis {

std::unique_ptr<Topology> make_topology(const ConnectOptions& options) {
  switch (options.endpoint.routing) {
  case Routing::single:
    // A plain URL may name a cluster node: it says so with its first MOVED.
    return std::make_unique<ClusterTopology>(options, ClusterTopology::Start::detect);
  case Routing::sentinel: throw ConfigError("Sentinel routing (redis+sentinel://) is not built yet");
  case Routing::cluster: return std::make_unique<ClusterTopology>(options, ClusterTopology::Start::cluster);
  }
  return std::make_unique<SingleNode>(options);
}

} // namespace rlock::redis
