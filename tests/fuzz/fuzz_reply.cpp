// SPDX-License-Identifier: MIT
// libFuzzer target: replies fed in arbitrary chunks through the connection's ReplyReader (hiredis's
// reader with a bound on array elements), then read with ReplyView the way the lock store does,
// must be parsed or rejected without crashing or allocating without bound.
#include "redis/reply.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

void walk(rlock::redis::ReplyView reply, int depth) {
  if (depth > 8) return;
  (void)reply.describe();
  try {
    (void)reply.integer();
  } catch (const rlock::Error&) {
  }
  if (reply.is_string() || reply.is_error()) (void)reply.string();
  if (reply.is_array()) {
    for (std::size_t i = 0; i < reply.size() && i < 64; ++i) walk(reply[i], depth + 1);
    try {
      (void)reply[reply.size()];
      __builtin_trap(); // out of range must throw
    } catch (const rlock::Error&) {
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte chooses the chunk size: replies arrive split at any boundary.
  std::size_t chunk = 1 + data[0] % 16;
  ++data;
  --size;
  rlock::redis::ReplyReader reader;
  for (std::size_t at = 0; at < size; at += chunk) {
    std::size_t n = std::min(chunk, size - at);
    reader.feed(std::string_view(reinterpret_cast<const char*>(data + at), n));
    for (;;) {
      rlock::redis::Reply reply;
      rlock::redis::ReplyReader::Status status = reader.next(reply);
      if (status == rlock::redis::ReplyReader::Status::protocol_error) return 0;
      if (status == rlock::redis::ReplyReader::Status::need_more) break;
      walk(reply.view(), 0);
    }
  }
  return 0;
}
