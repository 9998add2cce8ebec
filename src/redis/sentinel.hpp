// SPDX-License-Identifier: MIT
// SentinelTopology: the master a set of Redis Sentinels names (redis+sentinel://).
#pragma once

#include "redis/topology.hpp"

#include <string>
#include <vector>

namespace rlock::redis {

// What one sentinel said when asked for the master's address.
struct SentinelAnswer {
  // misconfigured: what asking again cannot cure (a certificate that fails verification).
  enum class Kind { address, unknown_master, auth_refused, misconfigured, unreachable };
  Kind kind = Kind::unreachable;
  HostPort address;    // kind address
  std::string message; // why, for the other kinds
};

// The address most of the sentinels that named one agree on (the first named, on a tie),
// or none. A sentinel that has not seen a failover yet still names the deposed master, so
// neither the first answer nor any one sentinel decides.
std::optional<HostPort> majority_address(const std::vector<SentinelAnswer>& answers);

// Every lock lives on the one master. It is found when first needed and again after refresh():
// the sentinels are asked in parallel (SENTINEL get-master-addr-by-name), the address most of
// them name is dialled, and ROLE must say master there, else the sentinels are asked again
// after a jittered pause, within the connect timeout. The master is never remembered across
// invocations. Exits (rlock(1), Sentinel): no sentinel reachable 69; every sentinel that
// answered says it knows no such master 78; the sentinels refused the credentials 77; a
// sentinel's TLS certificate failed verification 78; no confirmed master within the budget 69.
class SentinelTopology final : public Topology {
 public:
  explicit SentinelTopology(ConnectOptions options);

  Connection& node_for(std::string_view key, Deadline by) override;
  const ConnectOptions& options() const noexcept override { return m_options; }
  void each_primary(const std::function<void(Connection&)>& visit) override;
  // Forgets the master: the next node_for() asks the sentinels again, as it does after the
  // master's connection failed.
  void refresh(const ErrorReply& reason) override;
  void disconnect() noexcept override;

 private:
  // Asks until the master is confirmed, within the connect timeout and at most until `by`.
  void discover(Deadline by);
  std::vector<SentinelAnswer> ask_sentinels(Deadline deadline) const;
  // Connects to `address` and asks ROLE; "" when it is the master, else what it is.
  std::string confirm_master(const HostPort& address, Deadline deadline);

  ConnectOptions m_options; // the URL's: the sentinels in endpoint.seeds
  Connection m_master;      // to the master found last; its address changes on discovery
  bool m_found = false;
};

} // namespace rlock::redis
