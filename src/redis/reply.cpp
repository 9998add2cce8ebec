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

namespace {

// What a ReplyReader's tasks carry as privdata: the elements announced so far in one reply.
struct ElementBudget {
  std::size_t limit;
  std::size_t announced = 0;
  bool exceeded = false;
};

const redisReplyObjectFunctions& hiredis_functions() {
  // hiredis keeps its default object functions private; a reader made the default way points
  // at them.
  static const redisReplyObjectFunctions functions = [] {
    redisReader* reader = ::redisReaderCreate();
    if (reader == nullptr) throw Error(ExitCode::internal, "out of memory creating a reply reader");
    redisReplyObjectFunctions copy = *reader->fn;
    ::redisReaderFree(reader);
    return copy;
  }();
  return functions;
}

// hiredis 0.14 counts elements in an int, 1.x in a size_t: deduced from the slot it fills.
template <typename Count>
void* create_bounded_array(const redisReadTask* task, Count elements) {
  auto* budget = static_cast<ElementBudget*>(task->privdata);
  if (task->parent == nullptr) budget->announced = 0; // a new reply
  if (elements > 0) {
    budget->announced += static_cast<std::size_t>(elements);
    if (budget->announced > budget->limit) {
      budget->exceeded = true;
      return nullptr; // hiredis stops with an error
    }
  }
  return hiredis_functions().createArray(task, elements);
}

redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions functions = [] {
    redisReplyObjectFunctions copy = hiredis_functions();
    copy.createArray = create_bounded_array;
    return copy;
  }();
  return &functions;
}

} // namespace

void ReplyReader::Free::operator()(redisReader* reader) const noexcept {
  delete static_cast<ElementBudget*>(reader->privdata);
  ::redisReaderFree(reader);
}

ReplyReader::ReplyReader(std::size_t max_elements) : m_reader(::redisReaderCreateWithFunctions(bounded_functions())) {
  if (!m_reader) throw Error(ExitCode::internal, "out of memory creating a reply reader");
  m_reader->privdata = new ElementBudget{max_elements};
}

ReplyReader::~ReplyReader() = default;

void ReplyReader::feed(std::string_view bytes) {
  if (::redisReaderFeed(m_reader.get(), bytes.data(), bytes.size()) != REDIS_OK) {
    throw Error(ExitCode::internal, "out of memory reading a reply");
  }
}

ReplyReader::Status ReplyReader::next(Reply& out) {
  void* raw = nullptr;
  if (::redisReaderGetReply(m_reader.get(), &raw) != REDIS_OK) return Status::protocol_error;
  if (raw == nullptr) return Status::need_more;
  out = Reply(static_cast<redisReply*>(raw));
  return Status::reply;
}

std::string_view ReplyReader::error() const noexcept {
  if (static_cast<const ElementBudget*>(m_reader->privdata)->exceeded) {
    return "a reply announced more array elements than rlock accepts";
  }
  return m_reader->errstr;
}

} // namespace rlock::redis
