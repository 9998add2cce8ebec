// SPDX-License-Identifier: MIT
// Reply: an owned hiredis reply, and ReplyView to read it without copying.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct redisReply;
struct redisReader;

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

// Parses the bytes a server sends into replies, with hiredis's reader. Unlike the bare reader it
// refuses, as a protocol error, a reply whose arrays announce more than `max_elements` (by default
// k_max_elements) elements in all: hiredis allocates an array's slots when it reads the count, so "*999999999" from a
// hostile or broken server would otherwise cost gigabytes before a single element arrives.
class ReplyReader {
 public:
  static constexpr std::size_t k_max_elements = std::size_t{1} << 20; // status reads 1000 keys a page

  enum class Status { reply, need_more, protocol_error };

  explicit ReplyReader(std::size_t max_elements = k_max_elements); // throws Error(internal) when out of memory
  ~ReplyReader();
  ReplyReader(ReplyReader&&) noexcept = default;
  ReplyReader& operator=(ReplyReader&&) noexcept = default;

  void feed(std::string_view bytes); // throws Error(internal) when out of memory
  // Takes the next complete reply into `out` (Status::reply), or says why there is none.
  Status next(Reply& out);
  // What hiredis said about a protocol error.
  std::string_view error() const noexcept;

 private:
  struct Free {
    void operator()(redisReader* reader) const noexcept;
  };
  std::unique_ptr<redisReader, Free> m_reader;
};

} // namespace rlock::redis
