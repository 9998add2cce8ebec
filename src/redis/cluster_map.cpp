// SPDX-License-Identifier: MIT
// Hash slots and the slot map replies of Redis Cluster.
#include "redis/cluster_map.hpp"

#include "util/error.hpp"
#include <optional>

#include <array>
#include <charconv>
#include <fmt/format.h>

namespace rlock::redis {

namespace {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as in Redis's crc16.c.
constexpr std::array<std::uint16_t, 256> crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    unsigned crc = byte << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000U) != 0 ? (crc << 1) ^ 0x1021U : crc << 1;
    table[byte] = static_cast<std::uint16_t>(crc);
  }
  return table;
}

constexpr std::array<std::uint16_t, 256> k_crc16 = crc16_table();

std::uint16_t crc16(std::string_view bytes) noexcept {
  unsigned crc = 0;
  for (char c : bytes) {
    unsigned index = ((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xffU;
    crc = ((crc << 8) ^ k_crc16[index]) & 0xffffU;
  }
  return static_cast<std::uint16_t>(crc);
}

[[noreturn]] void malformed(std::string_view what, ReplyView reply) {
  throw Error(ExitCode::internal, fmt::format("{} reply not understood: {}", what, reply.describe()));
}

// A slot number from a reply, checked.
int slot_of(ReplyView value, std::string_view what, ReplyView whole) {
  if (!value.is_integer()) malformed(what, whole);
  std::int64_t slot = value.integer();
  if (slot < 0 || slot >= k_cluster_slots) malformed(what, whole);
  return static_cast<int>(slot);
}

int port_of(ReplyView value) {
  std::int64_t port = value.is_integer() || value.is_string() ? value.integer() : 0;
  return port > 0 && port < 65536 ? static_cast<int>(port) : 0;
}

// A node of CLUSTER SHARDS, its fields read from the flat map.
struct ShardNode {
  std::string ip;
  std::string endpoint;
  std::string hostname;
  std::string role;
  int port = 0;
  int tls_port = 0;
};

ShardNode read_shard_node(ReplyView node, ReplyView whole) {
  if (!node.is_array() || node.size() % 2 != 0) malformed("CLUSTER SHARDS", whole);
  ShardNode out;
  for (std::size_t i = 0; i + 1 < node.size(); i += 2) {
    if (!node[i].is_string()) malformed("CLUSTER SHARDS", whole);
    std::string_view key = node[i].string();
    ReplyView value = node[i + 1];
    auto text = [&] { return value.is_string() ? std::string(value.string()) : std::string(); };
    if (key == "ip")
      out.ip = text();
    else if (key == "endpoint")
      out.endpoint = text();
    else if (key == "hostname")
      out.hostname = text();
    else if (key == "role")
      out.role = text();
    else if (key == "port")
      out.port = port_of(value);
    else if (key == "tls-port")
      out.tls_port = port_of(value);
  }
  return out;
}

} // namespace

int key_slot(std::string_view key) noexcept {
  std::size_t open = key.find('{');
  if (open != std::string_view::npos) {
    std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (k_cluster_slots - 1);
}

std::vector<SlotRange> parse_cluster_shards(ReplyView reply, bool tls) {
  if (!reply.is_array()) malformed("CLUSTER SHARDS", reply);
  std::vector<SlotRange> ranges;
  for (std::size_t s = 0; s < reply.size(); ++s) {
    ReplyView shard = reply[s];
    if (!shard.is_array() || shard.size() % 2 != 0) malformed("CLUSTER SHARDS", reply);
    std::optional<ReplyView> slots;
    std::optional<ReplyView> nodes;
    for (std::size_t i = 0; i + 1 < shard.size(); i += 2) {
      if (!shard[i].is_string()) malformed("CLUSTER SHARDS", reply);
      if (shard[i].string() == "slots") slots = shard[i + 1];
      if (shard[i].string() == "nodes") nodes = shard[i + 1];
    }
    if (!slots || !nodes || !slots->is_array() || !nodes->is_array() || slots->size() % 2 != 0) {
      malformed("CLUSTER SHARDS", reply);
    }
    if (slots->size() == 0) continue; // a shard that serves no slot
    std::optional<ClusterNodeAddress> primary;
    for (std::size_t n = 0; n < nodes->size(); ++n) {
      ShardNode node = read_shard_node((*nodes)[n], reply);
      if (node.role != "master") continue;
      ClusterNodeAddress address;
      // The preferred endpoint is what a MOVED names; "?" when the node has none of that type.
      address.host = !node.endpoint.empty() && node.endpoint != "?" ? node.endpoint
                     : !node.hostname.empty()                       ? node.hostname
                                                                    : node.ip;
      address.port = tls && node.tls_port != 0 ? node.tls_port : node.port != 0 ? node.port : node.tls_port;
      address.name = node.hostname.empty() ? address.host : node.hostname;
      if (address.host.empty() || address.port == 0) continue;
      primary = std::move(address);
      break;
    }
    if (!primary) continue; // no primary known (yet): its slots stay unknown
    for (std::size_t i = 0; i + 1 < slots->size(); i += 2) {
      SlotRange range;
      range.first = slot_of((*slots)[i], "CLUSTER SHARDS", reply);
      range.last = slot_of((*slots)[i + 1], "CLUSTER SHARDS", reply);
      if (range.last < range.first) malformed("CLUSTER SHARDS", reply);
      range.primary = *primary;
      ranges.push_back(std::move(range));
    }
  }
  return ranges;
}

std::vector<SlotRange> parse_cluster_slots(ReplyView reply) {
  if (!reply.is_array()) malformed("CLUSTER SLOTS", reply);
  std::vector<SlotRange> ranges;
  for (std::size_t r = 0; r < reply.size(); ++r) {
    ReplyView entry = reply[r];
    if (!entry.is_array() || entry.size() < 3) malformed("CLUSTER SLOTS", reply);
    SlotRange range;
    range.first = slot_of(entry[0], "CLUSTER SLOTS", reply);
    range.last = slot_of(entry[1], "CLUSTER SLOTS", reply);
    ReplyView node = entry[2];
    if (range.last < range.first || !node.is_array() || node.size() < 2 || !node[0].is_string()) {
      malformed("CLUSTER SLOTS", reply);
    }
    range.primary.host = std::string(node[0].string());
    range.primary.port = port_of(node[1]);
    // Redis 7: a fourth element holds the node's other endpoints, hostname among them.
    if (node.size() >= 4 && node[3].is_array()) {
      ReplyView more = node[3];
      for (std::size_t i = 0; i + 1 < more.size(); i += 2) {
        if (more[i].is_string() && more[i].string() == "hostname" && more[i + 1].is_string()) {
          range.primary.name = std::string(more[i + 1].string());
        }
      }
    }
    if (range.primary.host.empty() || range.primary.host == "?") range.primary.host = range.primary.name;
    if (range.primary.name.empty()) range.primary.name = range.primary.host;
    if (range.primary.host.empty() || range.primary.port == 0) continue;
    ranges.push_back(std::move(range));
  }
  return ranges;
}

bool split_host_port(std::string_view target, std::string& host, int& port) {
  std::size_t colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view digits = target.substr(colon + 1);
  int value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size() || value <= 0 || value > 65535) return false;
  host = std::string(target.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = value;
  return true;
}

} // namespace rlock::redis
