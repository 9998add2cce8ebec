// SPDX-License-Identifier: MIT
// Tests for ReplyReader: replies parsed across chunk boundaries, and the bound on announced array
// elements that keeps a hostile server's "*999999999" from costing gigabytes (redis/reply).
#include "redis/reply.hpp"

#include <doctest/doctest.h>
#include <string>
#include <string_view>

using rlock::redis::Reply;
using rlock::redis::ReplyReader;

namespace {

// Feeds `bytes` one byte at a time and returns the status of the last next().
ReplyReader::Status feed_bytewise(ReplyReader& reader, std::string_view bytes, Reply& out) {
  ReplyReader::Status status = ReplyReader::Status::need_more;
  for (char byte : bytes) {
    reader.feed(std::string_view(&byte, 1));
    status = reader.next(out);
    if (status != ReplyReader::Status::need_more) return status;
  }
  return status;
}

} // namespace

TEST_CASE("ReplyReader parses replies split at any byte") {
  ReplyReader reader;
  Reply reply;
  REQUIRE(feed_bytewise(reader, "*2\r\n$3\r\nabc\r\n:42\r\n", reply) == ReplyReader::Status::reply);
  REQUIRE(reply.view().is_array());
  REQUIRE(reply.view().size() == 2);
  CHECK(reply.view()[0].string() == "abc");
  CHECK(reply.view()[1].integer() == 42);
  CHECK(reader.next(reply) == ReplyReader::Status::need_more);
}

TEST_CASE("ReplyReader refuses a reply announcing more elements than its bound") {
  SUBCASE("one array of the default bound plus one, announced before any element arrives") {
    ReplyReader reader;
    Reply reply;
    reader.feed("*" + std::to_string(ReplyReader::k_max_elements + 1) + "\r\n");
    CHECK(reader.next(reply) == ReplyReader::Status::protocol_error);
    CHECK(std::string(reader.error()).find("more array elements") != std::string::npos);
  }
  SUBCASE("nested arrays count together") {
    ReplyReader reader(10);
    Reply reply;
    reader.feed("*2\r\n*5\r\n");
    CHECK(reader.next(reply) == ReplyReader::Status::need_more); // 7 so far
    reader.feed(":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n*2\r\n");         // 9
    CHECK(reader.next(reply) == ReplyReader::Status::need_more);
    reader.feed(":1\r\n*3\r\n"); // 12
    CHECK(reader.next(reply) == ReplyReader::Status::protocol_error);
  }
  SUBCASE("an array of exactly the bound is accepted") {
    ReplyReader reader(3);
    Reply reply;
    reader.feed("*3\r\n:1\r\n:2\r\n:3\r\n");
    REQUIRE(reader.next(reply) == ReplyReader::Status::reply);
    CHECK(reply.view().size() == 3);
  }
}

TEST_CASE("ReplyReader's bound is per reply: consecutive replies are not charged together") {
  ReplyReader reader(4);
  Reply reply;
  for (int round = 0; round < 3; ++round) {
    INFO("round ", round);
    reader.feed("*2\r\n*1\r\n:7\r\n$1\r\nx\r\n"); // 3 elements each time
    REQUIRE(reader.next(reply) == ReplyReader::Status::reply);
    CHECK(reply.view()[0][0].integer() == 7);
    CHECK(reply.view()[1].string() == "x");
  }
  CHECK(reader.next(reply) == ReplyReader::Status::need_more);
}
