// SPDX-License-Identifier: MIT
// Connection: one logged-in Redis connection over our own Transport, with hiredis's reply
// reader and command formatter. Reconnects on the next call after a failure.
#pragma once

#include "redis/reply.hpp"
#include "redis/transport.hpp"
#include "redis/url.hpp"

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlock {
class Error;
}

namespace rlock::redis::scripts {
struct Script;
}

namespace rlock::redis {

struct ConnectOptions {
  Endpoint endpoint; // with the password already resolved from flags, files and environment
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds io_timeout{5000};
};

using Args = std::vector<std::string_view>;

// Appends `argv` as one command in RESP framing ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").
void append_command(std::string& out, const Args& argv);

class Connection {
 public:
  explicit Connection(ConnectOptions options);
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends the commands in one write and reads their replies. Error replies are returned, not
  // thrown. Connects (and logs in with AUTH and SELECT, one round trip) if not connected. On a
  // transport failure the connection is dropped and UnavailableError thrown; `deadline`
  // defaults to now + io_timeout and bounds the connect too. While it waits for the replies, a
  // readable `interrupt_fd` (a signalfd; -1: none) ends the call: the connection is dropped
  // and Interrupted thrown, carrying the signal read from it.
  std::vector<Reply> pipeline(const std::vector<Args>& commands, std::optional<Deadline> deadline = {},
                              int interrupt_fd = -1);
  Reply command(const Args& argv, std::optional<Deadline> deadline = {}, int interrupt_fd = -1);

  // pipeline() in two halves, so that the caller can work while the server does: send_pipeline
  // writes the commands in one write (connecting first if need be), receive_pipeline reads
  // their replies. Any other call first reads and drops replies not received, to stay in step.
  void send_pipeline(const std::vector<Args>& commands, std::optional<Deadline> deadline = {});
  std::vector<Reply> receive_pipeline(std::optional<Deadline> deadline = {});
  // receive_pipeline without waiting, for a caller that polls several connections at once:
  // reads what has arrived and returns the replies once all of them are in, else nothing (poll
  // fd() for wait_events(), then call again). A transport failure drops the connection and
  // throws UnavailableError, as receive_pipeline does.
  std::optional<std::vector<Reply>> receive_pipeline_ready();
  // The socket to poll while replies are awaited (-1: not connected), and for what (see
  // Transport::wait_events; 0: call receive_pipeline_ready at once).
  int fd() const noexcept { return m_transport ? m_transport->fd() : -1; }
  short wait_events() const noexcept { return m_transport ? m_transport->wait_events() : 0; }

  // EVALSHA, falling back to EVAL when the server does not have the script cached.
  Reply eval(const scripts::Script& script, const Args& keys, const Args& args, std::optional<Deadline> deadline = {});

  // eval() in two halves, so that the caller can work while the script runs: send_eval sends
  // it (connecting first if need be), receive_eval reads its reply. At most one is in flight;
  // any other call reads and drops the reply of an unreceived one first, to stay in step.
  // `then`, when not empty, is a command sent in the same write right after the script (WAIT,
  // which a script may not run); receive_eval_then reads its reply too.
  void send_eval(const scripts::Script& script, const Args& keys, const Args& args,
                 std::optional<Deadline> deadline = {}, const Args& then = {});
  Reply receive_eval(std::optional<Deadline> deadline = {});
  // The script's reply and, if send_eval had a `then`, that command's. On NOSCRIPT the script
  // goes again as EVAL, with `then` behind it again, and both replies are those of the resend.
  std::pair<Reply, std::optional<Reply>> receive_eval_then(std::optional<Deadline> deadline = {});

  void disconnect() noexcept;

  // Connects (and logs in) every one of `connections` that is not connected, all at once: the
  // connects, TLS handshakes and AUTH/SELECT round trips share one poll(2), so a server that
  // does not answer costs the others nothing. Each is bounded by `deadline` and its own
  // connect timeout, as a connect on its next call would be. A failure is kept and thrown by
  // that connection's next call, as if it had failed to connect there.
  static void connect_all(const std::vector<Connection*>& connections, Deadline deadline);

  // Cluster: the next write sends ASKING before its commands (an ASK redirect is for one
  // command, on the node it names), and its reply is read and dropped. Once per call.
  void ask_next() noexcept { m_ask_next = true; }
  // Whether ask_next() is waiting for the next write.
  bool asking_pending() const noexcept { return m_ask_next; }
  // Whether the last call on this connection failed on the transport (could not connect, reset,
  // timed out, not Redis) and none has succeeded since: a topology asks elsewhere where the
  // node went.
  bool failing() const noexcept { return m_failing; }
  const ConnectOptions& options() const noexcept { return m_options; }
  // Whether no reply is awaited (nothing sent by send_pipeline or send_eval left unread).
  bool idle() const noexcept { return m_unreceived == 0 && !m_sent_eval; }

  std::chrono::milliseconds io_timeout() const noexcept { return m_options.io_timeout; }
  std::chrono::milliseconds connect_timeout() const noexcept { return m_options.connect_timeout; }

 private:
  // An EVALSHA sent by send_eval, kept to resend as EVAL on NOSCRIPT.
  struct SentEval {
    const scripts::Script* script;
    std::vector<std::string> argv;
    bool asking = false;           // sent after ASKING: so is the EVAL that may follow
    std::vector<std::string> then; // the command sent right after it, if any
  };

  // Takes a connected transport; the login commands (AUTH, SELECT) it needs go into `login`,
  // their number returned.
  std::size_t adopt(Transport transport, std::string& login);
  // The deadline of a connect begun now for a call due by `deadline`.
  Deadline connect_deadline(Deadline deadline) const;
  // Throws unless `reply`, to the login command `index` of `count`, accepted it.
  void check_login(const Reply& reply, std::size_t index, std::size_t count);
  // Connects if need be, then writes the commands in one write.
  void send(const std::vector<Args>& commands, Deadline deadline);
  // The next reply to a command of ours (the replies to ASKING skipped).
  Reply read_reply(Deadline deadline, int interrupt_fd = -1);
  Reply read_one(Deadline deadline, int interrupt_fd);
  // disconnect() after a transport failure: failing() until a reply comes.
  void drop() noexcept;
  void drop_unreceived(Deadline deadline);
  // Rethrows the Error being handled, as UnavailableError if it is a TLS failure on a
  // connection that has worked before (TLS in rlock(1): transient while a lease is held).
  [[noreturn]] void rethrow_as_outage(const Error& error) const;
  // Whether a plaintext connection got the start of a TLS record back.
  bool answered_tls() const noexcept;

  ConnectOptions m_options;
  std::optional<Transport> m_transport;
  std::optional<ReplyReader> m_reader;
  std::string m_first_bytes;           // what the server sent first, to say what it is if not Redis
  std::optional<SentEval> m_sent_eval; // sent, reply not read yet
  std::size_t m_unreceived = 0;        // replies of send_pipeline not read yet
  std::vector<Reply> m_ready;          // of those, the ones receive_pipeline_ready has read
  bool m_established = false;          // a reply has come on this connection, ever
  bool m_ask_next = false;             // ask_next(): ASKING goes before the next write's commands
  std::size_t m_skip_replies = 0;      // replies to ASKING not read yet
  bool m_failing = false;              // failing()
  std::exception_ptr m_connect_error;  // connect_all() failed here: for the next call to throw
};

// Throws the Error an error reply deserves, as classified by classify_error (reply_class.hpp):
// TransientReplyError (69) for what a retry can cure, AuthError (77), ConfigError (78) for a key
// of the wrong type, Error(internal) for the rest. `context` says what rlock was doing.
[[noreturn]] void throw_reply_error(ReplyView reply, std::string_view context);

// "hiredis 0.14.1": the client library rlock was built with, for `rlock --version` (hiredis
// itself is private to this layer).
std::string client_library_version();

} // namespace rlock::redis
