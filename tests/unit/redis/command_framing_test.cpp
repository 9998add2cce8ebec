// SPDX-License-Identifier: MIT
// Tests for redis::append_command: RESP framing byte for byte as hiredis formats a command.
#include "redis/connection.hpp"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <string>
#include <vector>

namespace {

std::string hiredis_framing(const rlock::redis::Args& argv) {
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  for (auto arg : argv) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int length =
      ::redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), pointers.data(), lengths.data());
  REQUIRE(length >= 0);
  std::string text(formatted, static_cast<std::size_t>(length));
  ::redisFreeCommand(formatted);
  return text;
}

} // namespace

TEST_CASE("append_command: RESP framing as hiredis writes it, appended to what is there") {
  const std::string binary("a\0b\r\nc", 6);
  const std::string long_value(100'000, 'x');
  for (const rlock::redis::Args& argv : std::vector<rlock::redis::Args>{
           {"PING"},
           {"GET", "k"},
           {"SET", "rlock:{job}", "", "PX", "30000"},
           {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "2", "k1", "k2", binary, long_value},
       }) {
    std::string out = "before";
    rlock::redis::append_command(out, argv);
    CHECK(out == "before" + hiredis_framing(argv));
  }
  std::string out;
  rlock::redis::append_command(out, {"GET", "k"});
  CHECK(out == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}
