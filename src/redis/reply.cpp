// SPDX-License-Identifier: MIT
// Reply: reading hiredis reply objects (hiredis 0.14 and 1.x).
#include "redis/reply.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace rlock::redis {

void Reply::Free::operator()(redisReply* reply) const noexcept { ::freeReplyObject(reply); }

bool ReplyView::is_nil() const noexcept { return m_reply->type == REDIS_REPLY_NIL; }
bool ReplyView::is_error() const noexcept { return m_reply->type == REDIS_REPLY_ERROR; }
bool ReplyView::is_string() const noexcept {
  return m_reply->type == REDIS_REPLY_STRING || m_reply->type == REDIS_REPLY_STATUS;
}
bool ReplyView::is_integer() const noexcept { return m_reply->type == REDIS_REPLY_INTEGER; }
bool ReplyView::is_array() const noexcept { return m_reply->type == REDIS_REPLY_ARRAY; }

std::string_view ReplyView::string() const {
  if (!is_string() && !is_error()) {
    throw Error(ExitCode::internal, fmt::format("unexpected reply from Redis: {} (wanted a string)", describe()));
  }
  return {m_reply->str, m_reply->len};
}

std::int64_t ReplyView::integer() const {
  if (is_integer()) return m_reply->integer;
  std::int64_t value = 0;
  if (is_string() && parse_int(string(), value)) return value;
  throw Error(ExitCode::internal, fmt::format("unexpected reply from Redis: {} (wanted an integer)", describe()));
}

std::size_t ReplyView::size() const {
  if (!is_array()) {
    throw Error(ExitCode::internal, fmt::format("unexpected reply from Redis: {} (wanted an array)", describe()));
  }
  return m_reply->elements;
}

ReplyView ReplyView::operator[](std::size_t index) const {
  if (index >= size()) {
    throw Error(ExitCode::internal,
                fmt::format("unexpected reply from Redis: {} elements, wanted more than {}", size(), index));
  }
  return ReplyView(m_reply->element[index]);
}

std::string ReplyView::describe() const {
  switch (m_reply->type) {
  case REDIS_REPLY_NIL: return "(nil)";
  case REDIS_REPLY_INTEGER: return std::to_string(m_reply->integer);
  case REDIS_REPLY_ARRAY: return fmt::format("[{} elements]", m_reply->elements);
  default: {
    std::string text = printable(std::string_view(m_reply->str, m_reply->len));
    if (text.size() > 120) text = text.substr(0, 120) + "…";
    return text;
  }
  }
}

} // namespace rlock::redis
