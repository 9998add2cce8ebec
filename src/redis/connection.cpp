// SPDX-License-Identifier: MIT
// Connection: framing commands, reading replies, logging in, EVALSHA with fallback.
#include "redis/connection.hpp"

#include "redis/reply_class.hpp"
#include "redis/scripts.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <utility>

namespace rlock::redis {

namespace {

// Appends "*N\r\n" or "$N\r\n".
void append_length(std::string& out, char kind, std::size_t length) {
  char digits[24];
  const auto written = std::to_chars(digits, digits + sizeof digits, length);
  out.push_back(kind);
  out.append(digits, written.ptr);
  out.append("\r\n");
}

// Plaintext sent to a TLS port: the server answers with a TLS alert, or hangs up.
UnavailableError plaintext_to_tls(const std::string& peer) {
  return UnavailableError(fmt::format("{} answered with TLS, not the Redis protocol: the server may require TLS "
                                      "(rediss://)",
                                      peer));
}

} // namespace

// Appends one command in RESP framing, byte for byte as hiredis's redisFormatCommandArgv
// writes it, without its allocation and its sprintf per argument (about 12% of the
// instructions of an uncontended exec: EVALSHA carries 20-odd arguments).
void append_command(std::string& out, const Args& argv) {
  std::size_t size = 16;
  for (auto arg : argv) size += arg.size() + 16;
  out.reserve(out.size() + size);
  append_length(out, '*', argv.size());
  for (auto arg : argv) {
    append_length(out, '$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
}

bool Connection::answered_tls() const noexcept {
  // A TLS record: handshake (0x16) or alert (0x15), then major version 3.
  return m_transport && !m_transport->tls() && m_first_bytes.size() >= 2 &&
         (m_first_bytes[0] == '\x15' || m_first_bytes[0] == '\x16') && m_first_bytes[1] == '\x03';
}

void Connection::rethrow_as_outage(const Error& error) const {
  // Once this connection has worked, a TLS failure on reconnecting (a certificate rotated
  // mid-job, a proxy in between restarting) is an outage like any other: whoever holds a
  // lease retries it until the safety deadline instead of dying with 77 or 78.
  if (m_established && m_options.endpoint.tls.enabled && error.code() != ExitCode::unavailable &&
      error.code() != ExitCode::internal) {
    throw UnavailableError(error.what());
  }
  throw;
}

Connection::Connection(ConnectOptions options) : m_options(std::move(options)) {}
Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

void Connection::disconnect() noexcept {
  m_connect_error = nullptr;
  m_transport.reset();
  m_reader.reset();
  m_first_bytes.clear();
  m_unreceived = 0;
  m_ready.clear();
  m_skip_replies = 0;
}

void Connection::drop() noexcept {
  disconnect();
  m_failing = true;
}

Deadline Connection::connect_deadline(Deadline deadline) const {
  return std::min(deadline, std::chrono::steady_clock::now() + m_options.connect_timeout);
}

std::size_t Connection::adopt(Transport transport, std::string& login) {
  const Endpoint& endpoint = m_options.endpoint;
  m_transport.emplace(std::move(transport));
  m_reader.emplace();
  log::verbose("connected to {}", endpoint.redacted());
  std::size_t count = 0;
  if (endpoint.password) {
    if (endpoint.user.empty()) {
      append_command(login, {"AUTH", *endpoint.password});
    } else {
      append_command(login, {"AUTH", endpoint.user, *endpoint.password});
    }
    ++count;
  }
  if (endpoint.db != 0) {
    std::string db = std::to_string(endpoint.db);
    append_command(login, {"SELECT", db});
    ++count;
  }
  return count;
}

void Connection::check_login(const Reply& reply, std::size_t index, std::size_t count) {
  if (!reply.view().is_error()) return;
  ErrorReply error = classify_error(reply.view().string());
  disconnect();
  // A server out of connections or still loading refuses AUTH as it refuses anything.
  if (is_transient(error.kind)) {
    throw_error_reply(error, fmt::format("logging in to {}", m_options.endpoint.redacted()));
  }
  if (index + 1 == count && m_options.endpoint.db != 0 && error.kind != ReplyClass::auth &&
      !error.text.starts_with("ERR AUTH")) {
    throw ConfigError(fmt::format("Redis refused SELECT {}: {}", m_options.endpoint.db, error.text));
  }
  throw AuthError(fmt::format("Redis at {} refused the credentials: {}", m_options.endpoint.redacted(), error.text));
}

void Connection::connect_all(const std::vector<Connection*>& connections, Deadline deadline) {
  struct Pending {
    Connection* connection;
    Deadline until;
    std::optional<Transport::Dial> dial; // set while connecting
    std::size_t logins = 0;              // login commands sent
    std::size_t answered = 0;            // …and their replies read
    bool done = false;
  };
  std::vector<Pending> pending;
  const auto fail = [](Pending& one) {
    one.connection->drop();
    one.connection->m_connect_error = std::current_exception();
    one.done = true;
  };
  // Once connected: the login goes out at once (a few bytes on a fresh socket), its replies
  // are read as they come.
  const auto connected = [](Pending& one, Transport transport) {
    one.dial.reset();
    std::string login;
    one.logins = one.connection->adopt(std::move(transport), login);
    if (one.logins > 0) one.connection->m_transport->write_all(login, one.until);
    one.done = one.logins == 0;
  };
  for (Connection* connection : connections) {
    if (connection->m_transport || connection->m_connect_error) continue;
    Pending& one = pending.emplace_back(Pending{connection, connection->connect_deadline(deadline), {}, 0, 0, false});
    try {
      one.dial.emplace(Transport::dial(connection->m_options.endpoint));
    } catch (const Error&) {
      fail(one);
    }
  }
  std::vector<pollfd> fds;
  std::vector<Pending*> polled;
  for (;;) {
    fds.clear();
    polled.clear();
    Deadline first = Deadline::max();
    bool ready_now = false; // decrypted bytes poll(2) cannot see
    for (Pending& one : pending) {
      if (one.done) continue;
      if (one.dial) {
        fds.push_back({one.dial->fd(), one.dial->events(), 0});
      } else {
        fds.push_back({one.connection->m_transport->fd(), POLLIN, 0});
        ready_now = ready_now || one.connection->m_transport->pending();
      }
      polled.push_back(&one);
      first = std::min(first, one.until);
    }
    if (polled.empty()) return;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(first - std::chrono::steady_clock::now());
    int timeout = ready_now ? 0 : static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1'000'000'000));
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("poll", errno);
    const Deadline now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < polled.size(); ++i) {
      Pending& one = *polled[i];
      const bool ready = fds[i].revents != 0 || (!one.dial && one.connection->m_transport->pending());
      try {
        if (ready && one.dial) {
          if (std::optional<Transport> transport = one.dial->advance()) connected(one, std::move(*transport));
        } else if (ready) {
          // A reply arrives whole in practice; a part of one is waited for until `until`.
          Connection& connection = *one.connection;
          connection.check_login(connection.read_reply(one.until), one.answered, one.logins);
          one.done = ++one.answered == one.logins;
        } else if (now >= one.until) {
          if (one.dial) one.dial->time_out();
          throw UnavailableError(
              fmt::format("timed out waiting for a reply from {}", one.connection->m_transport->peer()));
        }
      } catch (const Error&) {
        fail(one);
      }
    }
  }
}

Reply Connection::read_reply(Deadline deadline, int interrupt_fd) {
  // ASKING answers OK. Refused, the command after it comes back redirected: a refusal by the
  // ACL is said as such, rather than as the redirect loop it would turn into.
  std::string refused;
  for (; m_skip_replies > 0; --m_skip_replies) {
    Reply asking = read_one(deadline, interrupt_fd);
    if (asking.view().is_error()) refused = std::string(asking.view().string());
  }
  Reply reply = read_one(deadline, interrupt_fd);
  if (!refused.empty() && classify_error(refused).kind == ReplyClass::auth) {
    throw AuthError(fmt::format("Redis at {} refused ASKING: {} (rlock on a cluster needs +asking: see MINIMAL ACL "
                                "in rlock(1))",
                                m_options.endpoint.redacted(), printable(refused)));
  }
  return reply;
}

Reply Connection::read_one(Deadline deadline, int interrupt_fd) {
  for (;;) {
    Reply reply;
    ReplyReader::Status status = m_reader->next(reply);
    if (status == ReplyReader::Status::reply) {
      m_established = true;
      m_failing = false;
      return reply;
    }
    if (status == ReplyReader::Status::protocol_error) {
      std::string seen = printable(m_first_bytes);
      std::string peer = m_transport->peer();
      std::string why(m_reader->error());
      bool tls_answer = answered_tls();
      drop();
      if (tls_answer) throw plaintext_to_tls(peer);
      throw UnavailableError(fmt::format("the server at {} does not speak the Redis protocol "
                                         "(it sent \"{}\": {}); check the URL's host and port",
                                         peer, seen, why));
    }
    std::string chunk;
    bool open = false;
    try {
      open = m_transport->read_some(chunk, deadline, interrupt_fd);
    } catch (const Error& error) {
      // A TLS port resets a connection that starts in plaintext; silence is no such sign.
      bool maybe_tls_port = !m_transport->tls() && m_first_bytes.empty() && !m_established &&
                            error.code() == ExitCode::unavailable && m_options.endpoint.kind == Endpoint::Kind::tcp &&
                            dynamic_cast<const TimedOutError*>(&error) == nullptr;
      drop();
      if (maybe_tls_port)
        throw UnavailableError(fmt::format("{}; the server may require TLS (rediss://)", error.what()));
      rethrow_as_outage(error);
    }
    if (!open) {
      std::string peer = m_transport->peer();
      std::string seen = printable(m_first_bytes);
      bool tls_answer = answered_tls();
      bool plaintext = !m_transport->tls();
      drop();
      if (tls_answer) throw plaintext_to_tls(peer);
      if (plaintext && seen.empty() && !m_established) {
        throw UnavailableError(fmt::format("connection to {} closed by the server before any reply; the "
                                           "server may require TLS (rediss://)",
                                           peer));
      }
      bool looks_like_resp = !seen.empty() && std::string_view("+-:$*").find(seen[0]) != std::string_view::npos;
      if (!seen.empty() && !looks_like_resp) {
        throw UnavailableError(fmt::format("the server at {} closed the connection after sending "
                                           "\"{}\"; is it a Redis server?",
                                           peer, seen));
      }
      throw UnavailableError(fmt::format("connection to {} closed by the server", peer));
    }
    if (m_first_bytes.size() < 40) {
      m_first_bytes.append(chunk.substr(0, 40 - m_first_bytes.size()));
    }
    m_reader->feed(chunk);
  }
}

void Connection::send(const std::vector<Args>& commands, Deadline deadline) {
  std::string out;
  try {
    if (m_connect_error) std::rethrow_exception(std::exchange(m_connect_error, nullptr));
    if (!m_transport) {
      std::size_t logins = adopt(Transport::connect(m_options.endpoint, connect_deadline(deadline)), out);
      // AUTH and SELECT get their own round trip: pipelined with the commands, a refused AUTH
      // would still let the commands run, as the default user, perhaps on database 0.
      if (logins > 0) m_transport->write_all(out, deadline);
      for (std::size_t i = 0; i < logins; ++i) check_login(read_reply(deadline), i, logins);
    }
    out.clear();
    bool asking = m_ask_next;
    m_ask_next = false;
    if (asking) append_command(out, {"ASKING"});
    for (const auto& argv : commands) append_command(out, argv);
    m_transport->write_all(out, deadline);
    if (asking) m_skip_replies = 1;
  } catch (const Error& error) {
    // Whatever went wrong, the stream is out of step with our requests now.
    drop();
    rethrow_as_outage(error);
  } catch (...) {
    drop();
    throw;
  }
}

void Connection::drop_unreceived(Deadline deadline) {
  std::size_t unread = m_unreceived - m_ready.size() + (m_sent_eval ? (m_sent_eval->then.empty() ? 1 : 2) : 0);
  m_sent_eval.reset();
  m_unreceived = 0;
  m_ready.clear();
  try {
    for (; unread > 0 && m_transport; --unread) (void)read_reply(deadline);
  } catch (...) {
    drop();
    throw;
  }
}

void Connection::send_pipeline(const std::vector<Args>& commands, std::optional<Deadline> deadline) {
  Deadline until = deadline.value_or(std::chrono::steady_clock::now() + m_options.io_timeout);
  drop_unreceived(until);
  send(commands, until);
  m_unreceived = commands.size();
}

std::vector<Reply> Connection::receive_pipeline(std::optional<Deadline> deadline) {
  Deadline until = deadline.value_or(std::chrono::steady_clock::now() + m_options.io_timeout);
  std::size_t count = m_unreceived;
  m_unreceived = 0;
  std::vector<Reply> replies = std::move(m_ready);
  m_ready.clear();
  try {
    if (!m_transport && count > replies.size())
      throw UnavailableError("the connection was lost before the replies came");
    replies.reserve(count);
    while (replies.size() < count) replies.push_back(read_reply(until));
    return replies;
  } catch (...) {
    drop();
    throw;
  }
}

std::optional<std::vector<Reply>> Connection::receive_pipeline_ready() {
  try {
    while (m_ready.size() < m_unreceived) {
      if (!m_transport) throw UnavailableError("the connection was lost before the replies came");
      Reply reply;
      ReplyReader::Status status = m_reader->next(reply);
      if (status == ReplyReader::Status::reply) {
        m_established = true;
        m_failing = false;
        if (m_skip_replies > 0) {
          --m_skip_replies; // ASKING's answer
        } else {
          m_ready.push_back(std::move(reply));
        }
        continue;
      }
      if (status == ReplyReader::Status::protocol_error) {
        throw UnavailableError(fmt::format("the server at {} does not speak the Redis protocol ({})",
                                           m_transport->peer(), m_reader->error()));
      }
      std::string chunk;
      switch (m_transport->read_ready(chunk)) {
      case Transport::Ready::nothing: return std::nullopt;
      case Transport::Ready::eof:
        throw UnavailableError(fmt::format("connection to {} closed by the server", m_transport->peer()));
      case Transport::Ready::data: m_reader->feed(chunk); break;
      }
    }
  } catch (...) {
    drop();
    throw;
  }
  m_unreceived = 0;
  std::vector<Reply> replies = std::move(m_ready);
  m_ready.clear();
  return replies;
}

std::vector<Reply> Connection::pipeline(const std::vector<Args>& commands, std::optional<Deadline> deadline,
                                        int interrupt_fd) {
  Deadline until = deadline.value_or(std::chrono::steady_clock::now() + m_options.io_timeout);
  drop_unreceived(until);
  send(commands, until);
  try {
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) replies.push_back(read_reply(until, interrupt_fd));
    return replies;
  } catch (...) {
    drop();
    throw;
  }
}

Reply Connection::command(const Args& argv, std::optional<Deadline> deadline, int interrupt_fd) {
  return std::move(pipeline({argv}, deadline, interrupt_fd).front());
}

Reply Connection::eval(const scripts::Script& script, const Args& keys, const Args& args,
                       std::optional<Deadline> deadline) {
  send_eval(script, keys, args, deadline);
  return receive_eval(deadline);
}

void Connection::send_eval(const scripts::Script& script, const Args& keys, const Args& args,
                           std::optional<Deadline> deadline, const Args& then) {
  Deadline until = deadline.value_or(std::chrono::steady_clock::now() + m_options.io_timeout);
  drop_unreceived(until);
  SentEval sent{&script, {"EVALSHA", script.sha1, std::to_string(keys.size())}, m_ask_next, {then.begin(), then.end()}};
  sent.argv.insert(sent.argv.end(), keys.begin(), keys.end());
  sent.argv.insert(sent.argv.end(), args.begin(), args.end());
  std::vector<Args> commands{Args(sent.argv.begin(), sent.argv.end())};
  if (!sent.then.empty()) commands.emplace_back(sent.then.begin(), sent.then.end());
  send(commands, until);
  m_sent_eval = std::move(sent);
}

Reply Connection::receive_eval(std::optional<Deadline> deadline) { return receive_eval_then(deadline).first; }

std::pair<Reply, std::optional<Reply>> Connection::receive_eval_then(std::optional<Deadline> deadline) {
  if (!m_sent_eval) throw Error(ExitCode::internal, "receive_eval without send_eval");
  SentEval sent = std::move(*m_sent_eval);
  m_sent_eval.reset();
  Deadline until = deadline.value_or(std::chrono::steady_clock::now() + m_options.io_timeout);
  Reply reply;
  std::optional<Reply> then;
  try {
    if (!m_transport) throw UnavailableError("the connection was lost before the reply came");
    reply = read_reply(until);
    if (!sent.then.empty()) then = read_reply(until);
  } catch (...) {
    drop();
    throw;
  }
  if (reply.view().is_error() && classify_error(reply.view().string()).kind == ReplyClass::script_missing) {
    log::verbose("script {} not cached on the server; sending it with EVAL", sent.script->name);
    sent.argv[0] = "EVAL";
    sent.argv[1] = sent.script->body;
    if (sent.asking) m_ask_next = true;
    std::vector<Args> commands{Args(sent.argv.begin(), sent.argv.end())};
    if (!sent.then.empty()) commands.emplace_back(sent.then.begin(), sent.then.end());
    std::vector<Reply> replies = pipeline(commands, until);
    reply = std::move(replies.front());
    if (then) then = std::move(replies.back());
  }
  return {std::move(reply), std::move(then)};
}

void throw_reply_error(ReplyView reply, std::string_view context) {
  std::string text(reply.is_error() || reply.is_string() ? reply.string() : reply.describe());
  throw_error_reply(classify_error(text), context);
}

std::string client_library_version() {
  return fmt::format("hiredis {}.{}.{}", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
}

} // namespace rlock::redis
