// SPDX-License-Identifier: MIT
// libFuzzer target: the holder-data reader. Holder fields are whatever is stored in Redis, so
// a holder block with arbitrary field bytes must read as values rlock can show (unknown where
// they make no sense) and be described without throwing; any other reply may only be
// rejected with rlock::Error.
#include "cli/commands.hpp"
#include "redis/redis_lock_store.hpp"
#include "redis/reply.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace {

std::string bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

// One reply from `resp`, or nothing when it is not one whole reply. The connection's reader,
// bounded in announced array elements, as rlock reads what a server sends.
std::optional<rlock::redis::Reply> read_one(const std::string& resp) {
  rlock::redis::ReplyReader reader;
  reader.feed(resp);
  rlock::redis::Reply reply;
  if (reader.next(reply) != rlock::redis::ReplyReader::Status::reply) return std::nullopt;
  return reply;
}

void check(const rlock::lock::LockInfo& lock) {
  constexpr std::int64_t max_pid = std::numeric_limits<pid_t>::max();
  if (lock.holders.size() > 1 || lock.waiters < 0 || lock.server_now_ms < 0) __builtin_trap();
  for (const rlock::lock::HolderInfo& info : lock.holders) {
    if (info.meta.pid < 0 || info.meta.pid > max_pid) __builtin_trap();
    if (info.keeper_pid < 0 || info.keeper_pid > max_pid) __builtin_trap();
    if (info.acquired_at_ms < 0 || info.ttl_ms < 0 || info.fence < 0 || info.renewals < -1) __builtin_trap();
    if (info.remaining_ms < -1) __builtin_trap();
    (void)rlock::cli::or_unknown(info.meta.host);
    (void)rlock::cli::or_unknown(info.meta.pid);
  }
  (void)rlock::cli::describe_holder(lock);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 4 == 0) {
    // Any reply at all, read as a holder block at 0 and (as acquire's busy reply has it) at 1.
    std::optional<rlock::redis::Reply> reply = read_one(std::string(input));
    if (!reply) return 0;
    for (std::size_t at : {0, 1}) {
      try {
        check(rlock::redis::holder_from(reply->view(), at));
      } catch (const rlock::Error&) {
      }
    }
    return 0;
  }
  // A holder block as the scripts build it, with the nine stored fields cut from the input at
  // NUL bytes: it must read without throwing.
  std::string resp = "*15\r\n:1\r\n:" + std::to_string(data[0]) + "\r\n:0\r\n:1796225362138\r\n:1\r\n:0\r\n";
  std::size_t fields = 0;
  while (fields < 9) {
    std::size_t end = std::min(input.find('\0'), input.size());
    resp += bulk(input.substr(0, end));
    input.remove_prefix(std::min(end + 1, input.size()));
    ++fields;
  }
  std::optional<rlock::redis::Reply> reply = read_one(resp);
  if (!reply) __builtin_trap();
  check(rlock::redis::holder_from(reply->view(), 0));
  return 0;
}
