// SPDX-License-Identifier: MIT
// The slot map of a Redis Cluster: a key's hash slot, and CLUSTER SHARDS / CLUSTER SLOTS replies
// read into the primary that serves each range of slots.
#pragma once

#include "redis/reply.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::redis {

inline constexpr int k_cluster_slots = 16384;

// The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of its
// hash tag (what lies between the first '{' and the first '}' after it, when not empty), mod 16384.
int key_slot(std::string_view key) noexcept;

// A node as the cluster announces it.
struct ClusterNodeAddress {
  std::string host; // what to dial: the node's preferred endpoint (cluster-preferred-endpoint-type)
  int port = 0;     // its plaintext or TLS port, as the connection will be
  std::string name; // the name its TLS certificate is checked against: its announced host name
                    // (cluster-announce-hostname) when it has one, else `host`
};

// The primary serving slots [first, last].
struct SlotRange {
  int first = 0;
  int last = 0;
  ClusterNodeAddress primary;
};

// Reads a CLUSTER SHARDS reply (Redis 7+), in RESP2 (maps as flat arrays). Replicas, and
// primaries whose health is not "online" but that still own slots, are told apart by role only:
// a failed primary keeps its slots until a replica takes them. `tls`: use each node's tls-port.
// Throws Error(internal) when the reply is not shaped like one.
std::vector<SlotRange> parse_cluster_shards(ReplyView reply, bool tls);

// Reads a CLUSTER SLOTS reply (Redis 3+, deprecated in 7): [first, last, [host, port, id,
// {hostname…}], replicas…] per range. The port is the one the server deems right for this
// connection. Throws Error(internal) when the reply is not shaped like one.
std::vector<SlotRange> parse_cluster_slots(ReplyView reply);

// Splits "host:port" (a redirect's target; an IPv6 host keeps its colons) into its parts; false
// when it is not shaped so.
bool split_host_port(std::string_view target, std::string& host, int& port);

} // namespace rlock::redis
