// SPDX-License-Identifier: MIT
// Tests for the cluster slot map: key slots against Redis's own CLUSTER KEYSLOT answers, and
// CLUSTER SHARDS / CLUSTER SLOTS replies read into primaries (redis/cluster_map).
#include "redis/cluster_map.hpp"

#include "redis/reply.hpp"
#include "util/error.hpp"

#include <doctest/doctest.h>
#include <initializer_list>
#include <string>
#include <string_view>

using namespace rlock::redis;

namespace {

// RESP2 framing, to write replies as a server sends them.
std::string bulk(std::string_view text) {
  return "$" + std::to_string(text.size()) + "\r\n" + std::string(text) + "\r\n";
}
std::string num(long long value) { return ":" + std::to_string(value) + "\r\n"; }
std::string arr(std::initializer_list<std::string> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const std::string& item : items) out += item;
  return out;
}

Reply parse(const std::string& bytes) {
  ReplyReader reader;
  reader.feed(bytes);
  Reply reply;
  REQUIRE(reader.next(reply) == ReplyReader::Status::reply);
  return reply;
}

// One node of CLUSTER SHARDS as Redis 7.0 writes it; `hostname` empty: not announced.
std::string shard_node(int port, std::string_view role, std::string_view endpoint, std::string_view hostname,
                       int tls_port = 0, std::string_view health = "online") {
  std::string fields = bulk("id") + bulk("3b976cb6b15c9379c8b54bd4833b69cf5fb42980") + bulk("port") + num(port);
  std::size_t count = 4;
  if (tls_port != 0) {
    fields += bulk("tls-port") + num(tls_port);
    count += 2;
  }
  fields += bulk("ip") + bulk("127.0.0.1") + bulk("endpoint") + bulk(endpoint);
  count += 4;
  if (!hostname.empty()) {
    fields += bulk("hostname") + bulk(hostname);
    count += 2;
  }
  fields += bulk("role") + bulk(role) + bulk("replication-offset") + num(72156) + bulk("health") + bulk(health);
  count += 6;
  return "*" + std::to_string(count) + "\r\n" + fields;
}

} // namespace

TEST_CASE("key_slot matches CLUSTER KEYSLOT") {
  // Answers of redis-server 7.0.15's CLUSTER KEYSLOT.
  CHECK(key_slot("foo") == 12182);
  CHECK(key_slot("bar") == 5061);
  CHECK(key_slot("hello") == 866);
  CHECK(key_slot("123456789") == 12739); // CRC16/XMODEM check value 0x31C3, mod 16384
  CHECK(key_slot("") == 0);
  SUBCASE("a hash tag: the first {...} that is not empty") {
    CHECK(key_slot("{user1000}.following") == 3443);
    CHECK(key_slot("{user1000}.followers") == 3443);
    CHECK(key_slot("foo{bar}{zap}") == 5061);
    CHECK(key_slot("foo{}{bar}") == 8363); // empty first tag: the whole key
    CHECK(key_slot("foo{{bar}}zap") == 4015);
    CHECK(key_slot("{") == 4092);
    CHECK(key_slot("}") == 12090);
    CHECK(key_slot("a{b") == 13340);
  }
  SUBCASE("every key of a lock lands in one slot") {
    CHECK(key_slot("rlock:{build}") == 1264);
    CHECK(key_slot("rlock:{build}:meta") == 1264);
    CHECK(key_slot("rlock:{build}:wake:0123abcd") == 1264);
  }
}

TEST_CASE("parse_cluster_shards reads the primary of each shard") {
  std::string reply = arr({
      arr({bulk("slots"), arr({num(10923), num(16383)}), bulk("nodes"),
           arr({shard_node(7004, "replica", "127.0.0.1", ""), shard_node(7003, "master", "127.0.0.1", "")})}),
      arr({bulk("slots"), arr({num(0), num(5460), num(5462), num(5470)}), bulk("nodes"),
           arr({shard_node(7001, "master", "127.0.0.1", "")})}),
      arr({bulk("slots"), arr({}), bulk("nodes"), arr({shard_node(7009, "master", "127.0.0.1", "")})}),
  });
  Reply parsed = parse(reply);
  std::vector<SlotRange> ranges = parse_cluster_shards(parsed.view(), false);
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0].first == 10923);
  CHECK(ranges[0].last == 16383);
  CHECK(ranges[0].primary.host == "127.0.0.1");
  CHECK(ranges[0].primary.port == 7003);
  CHECK(ranges[0].primary.name == "127.0.0.1");
  CHECK(ranges[1].first == 0);
  CHECK(ranges[1].last == 5460);
  CHECK(ranges[2].first == 5462);
  CHECK(ranges[2].last == 5470);
  CHECK(ranges[2].primary.port == 7001);
}

TEST_CASE("parse_cluster_shards: announced host names and TLS ports") {
  SUBCASE("endpoint type hostname: dial and verify the name") {
    Reply parsed = parse(arr({arr({bulk("slots"), arr({num(0), num(16383)}), bulk("nodes"),
                                   arr({shard_node(7001, "master", "localhost", "localhost")})})}));
    std::vector<SlotRange> ranges = parse_cluster_shards(parsed.view(), false);
    REQUIRE(ranges.size() == 1);
    CHECK(ranges[0].primary.host == "localhost");
    CHECK(ranges[0].primary.name == "localhost");
  }
  SUBCASE("endpoint type ip with a host name announced: dial the IP, verify the name") {
    Reply parsed = parse(arr({arr({bulk("slots"), arr({num(0), num(16383)}), bulk("nodes"),
                                   arr({shard_node(7001, "master", "127.0.0.1", "redis-1.test", 8001)})})}));
    std::vector<SlotRange> plain = parse_cluster_shards(parsed.view(), false);
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].primary.host == "127.0.0.1");
    CHECK(plain[0].primary.port == 7001);
    CHECK(plain[0].primary.name == "redis-1.test");
    std::vector<SlotRange> tls = parse_cluster_shards(parsed.view(), true);
    REQUIRE(tls.size() == 1);
    CHECK(tls[0].primary.port == 8001);
  }
  SUBCASE("endpoint unknown ('?'): the IP") {
    Reply parsed = parse(arr(
        {arr({bulk("slots"), arr({num(0), num(16383)}), bulk("nodes"), arr({shard_node(7001, "master", "?", "")})})}));
    std::vector<SlotRange> ranges = parse_cluster_shards(parsed.view(), false);
    REQUIRE(ranges.size() == 1);
    CHECK(ranges[0].primary.host == "127.0.0.1");
  }
  SUBCASE("a shard whose primary failed keeps its slots on it until a replica takes over") {
    Reply parsed = parse(arr({arr({bulk("slots"), arr({num(0), num(16383)}), bulk("nodes"),
                                   arr({shard_node(7001, "master", "127.0.0.1", "", 0, "fail")})})}));
    CHECK(parse_cluster_shards(parsed.view(), false).size() == 1);
  }
  SUBCASE("a shard with only replicas: its slots stay unknown") {
    Reply parsed = parse(arr({arr({bulk("slots"), arr({num(0), num(16383)}), bulk("nodes"),
                                   arr({shard_node(7001, "replica", "127.0.0.1", "")})})}));
    CHECK(parse_cluster_shards(parsed.view(), false).empty());
  }
}

TEST_CASE("parse_cluster_shards refuses what is not a CLUSTER SHARDS reply") {
  CHECK_THROWS_AS(parse_cluster_shards(parse(bulk("OK")).view(), false), rlock::Error);
  CHECK_THROWS_AS(parse_cluster_shards(parse(arr({arr({bulk("slots")})})).view(), false), rlock::Error);
  CHECK_THROWS_AS(parse_cluster_shards(parse(arr({arr({bulk("slots"), arr({num(0), num(16384)}), bulk("nodes"),
                                                       arr({shard_node(1, "master", "h", "")})})}))
                                           .view(),
                                       false),
                  rlock::Error);
}

TEST_CASE("parse_cluster_slots reads each range's primary") {
  std::string reply = arr({
      arr({num(0), num(5460),
           arr({bulk("127.0.0.1"), num(7001), bulk("id1"), arr({bulk("hostname"), bulk("n1.test")})}),
           arr({bulk("127.0.0.1"), num(7004), bulk("id4"), arr({})})}),
      arr({num(5461), num(16383), arr({bulk("127.0.0.1"), num(7002), bulk("id2")})}),
  });
  std::vector<SlotRange> ranges = parse_cluster_slots(parse(reply).view());
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].first == 0);
  CHECK(ranges[0].last == 5460);
  CHECK(ranges[0].primary.host == "127.0.0.1");
  CHECK(ranges[0].primary.port == 7001);
  CHECK(ranges[0].primary.name == "n1.test");
  CHECK(ranges[1].primary.port == 7002);
  CHECK(ranges[1].primary.name == "127.0.0.1");
  CHECK_THROWS_AS(parse_cluster_slots(parse(arr({arr({num(5), num(1), arr({bulk("h"), num(1)})})})).view()),
                  rlock::Error);
}

TEST_CASE("split_host_port reads a redirect's target") {
  std::string host;
  int port = 0;
  CHECK(split_host_port("127.0.0.1:6381", host, port));
  CHECK(host == "127.0.0.1");
  CHECK(port == 6381);
  CHECK(split_host_port("localhost:7000", host, port));
  CHECK(host == "localhost");
  CHECK(split_host_port("::1:7000", host, port));
  CHECK(host == "::1");
  CHECK(port == 7000);
  CHECK_FALSE(split_host_port("nohost", host, port));
  CHECK_FALSE(split_host_port(":7000", host, port));
  CHECK_FALSE(split_host_port("h:0", host, port));
  CHECK_FALSE(split_host_port("h:70000", host, port));
  CHECK_FALSE(split_host_port("h:12x", host, port));
}
