// SPDX-License-Identifier: MIT
// make_topology: the Topology a URL asks for.
#include "redis/topology.hpp"

#include "util/error.hpp"

namespace rlock::redis {

std::unique_ptr<Topology> make_topology(const ConnectOptions& options) {
  switch (options.endpoint.routing) {
  case Routing::single: break;
  case Routing::sentinel: throw ConfigError("Sentinel routing (redis+sentinel://) is not built yet");
  case Routing::cluster: throw ConfigError("cluster routing (redis+cluster://) is not built yet");
  }
  return std::make_unique<SingleNode>(options);
}

} // namespace rlock::redis
