// SPDX-License-Identifier: MIT
// Reply: an owned hiredis reply, and ReplyView to read it without copying.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct redisReply;

namespace rlock::redis {

// A read-only view of one reply node. Accessors throw Error(internal) on a type mismatch, so a
// script that returns something unexpected is reported rather than misread.
class ReplyView {
 public:
  explicit ReplyView(const redisReply* reply) noexcept : m_reply(reply) {}

  bool is_nil() const noexcept;
  bool is_error() const noexcept;
  bool is_string() const noexcept; // bulk or status
  bool is_integer() const noexcept;
  bool is_array() const noexcept;

  std::string_view string() const; // bulk, status or error text
  std::int64_t integer() const;    // an integer, or a bulk string holding one
  std::size_t size() const;        // array length
  ReplyView operator[](std::size_t index) const;

  // A short rendering for messages: "(nil)", "ERR …", "42", "[3 elements]".
  std::string describe() const;

 private:
  const redisReply* m_reply;
};

class Reply {
 public:
  Reply() noexcept = default;
  explicit Reply(redisReply* reply) noexcept : m_reply(reply) {}
  ReplyView view() const noexcept { return ReplyView(m_reply.get()); }

 private:
  struct Free {
    void operator()(redisReply* reply) const noexcept;
  };
  std::unique_ptr<redisReply, Free> m_reply;
};

} // namespace rlock::redis
