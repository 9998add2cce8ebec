// SPDX-License-Identifier: MIT
// SingleNode: the Topology of one server.
#include "redis/topology.hpp"

#include "util/log.hpp"

namespace rlock::redis {

Connection& SingleNode::node_for(std::string_view key, Deadline by) {
  (void)key;
  (void)by;
  return m_connection;
}

void SingleNode::each_primary(const std::function<void(Connection&)>& visit) { visit(m_connection); }

void SingleNode::refresh(const ErrorReply& reason) {
  log::verbose("reconnecting: {}", reason.text);
  m_connection.disconnect();
}

void SingleNode::disconnect() noexcept { m_connection.disconnect(); }

} // namespace rlock::redis
