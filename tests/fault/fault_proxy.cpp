// SPDX-License-Identifier: MIT
// rlock-fault-proxy: a TCP proxy between rlock and redis-server that injects network faults
// on command (delay, blackhole, reset), for the fault checker. `tc netem` is not available.
//
// Design. One thread, one poll loop. Every chunk read from one side is queued for the other
// side with a due time (now + the current delay) and written, in order, once due; so a
// delay applies to each direction, later chunks never overtake earlier ones, and switching
// back to `pass` lets what was already queued arrive at its due time. An end of stream is a
// queued chunk too: a client's close reaches Redis only after its last bytes.
//
//   pass          forward at once (delay 0).
//   delay MS      forward every chunk MS milliseconds after it arrived.
//   delay-replies MS [after N]
//                 forward what clients send at once, and what the server sends MS
//                 milliseconds late: commands take effect, their replies come late (a
//                 client that gives up on a reply does not know whether its write happened).
//                 With `after N`, a connection's server bytes pass at once until its client
//                 has sent more than N chunks: `after 1` lets a TLS handshake's first round
//                 trip through, so that a new connection still gets its commands to Redis.
//   blackhole     accept and connect as usual, but neither read nor write: bytes wait in
//                 the kernel's socket buffers as in a network partition, and flow (late)
//                 once the mode changes, as TCP would retransmit them after a partition
//                 heals. Peers that gave up meanwhile are noticed only then.
//   reset         close every connection with a TCP reset, close the listening socket so
//                 new connections are refused (ECONNREFUSED); the next mode listens again
//                 on the same port.
//
// Control: a unix stream socket (--control PATH). A client sends one line, gets one line
// ("ok ..." or "error ...") once the mode is in effect, and the proxy closes the connection:
//   pass | delay MS | delay-replies MS [after N] | blackhole | reset | status
// `status` answers "ok mode=... conns=N accepted=N bytes_up=N bytes_down=N".
//
// Usage: rlock-fault-proxy --listen 127.0.0.1:PORT --backend 127.0.0.1:PORT --control PATH
// PORT 0 picks a free port. Once listening, prints "port N" on stdout (one line, flushed).
// SIGTERM or SIGINT: exit 0.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t k_max_queued = 1 << 20; // per direction; stop reading beyond this
constexpr std::size_t k_read_size = std::size_t{64} * 1024;

volatile sig_atomic_t g_stop = 0;

extern "C" void on_stop(int) { g_stop = 1; }

std::int64_t now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

[[noreturn]] void die(const std::string& message) {
  (void)std::fprintf(stderr, "fault-proxy: %s\n", message.c_str());
  std::exit(1);
}

struct Endpoint {
  sockaddr_in addr{};
};

Endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    die("expected HOST:PORT, got " + text);
  }
  Endpoint endpoint;
  endpoint.addr.sin_family = AF_INET;
  const std::string host = text.substr(0, colon);
  if (inet_pton(AF_INET, host.c_str(), &endpoint.addr.sin_addr) != 1) {
    die("not an IPv4 address: " + host);
  }
  char* end = nullptr;
  const long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    die("bad port in " + text);
  }
  endpoint.addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return endpoint;
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Close so that the peer sees a reset rather than an orderly end of stream.
void close_with_reset(int fd) {
  if (fd < 0) {
    return;
  }
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(fd);
}

struct Chunk {
  std::string data; // empty: end of stream
  std::size_t offset = 0;
  std::int64_t due_ms = 0;
};

// One direction of a connection.
struct Flow {
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  bool read_eof = false; // the source ended; an empty chunk marks it in the queue
  bool write_blocked = false;
  std::uint64_t bytes = 0;
  std::uint64_t chunks = 0; // reads that returned data
};

struct Conn {
  int client = -1;
  int server = -1;
  bool connecting = true; // the backend connect has not completed yet
  Flow up;                // client -> server
  Flow down;              // server -> client
  bool dead = false;
  bool reset_peers = false; // close with RST (an error on one side)
};

enum class Mode { pass, delay, delay_replies, blackhole, reset };

const char* mode_name(Mode mode) {
  switch (mode) {
  case Mode::pass: return "pass";
  case Mode::delay: return "delay";
  case Mode::delay_replies: return "delay-replies";
  case Mode::blackhole: return "blackhole";
  case Mode::reset: return "reset";
  }
  return "?";
}

struct ControlClient {
  int fd = -1;
  std::string input;
};

class Proxy {
 public:
  Proxy(Endpoint listen_at, Endpoint backend, std::string control_path)
      : m_listen_at(listen_at), m_backend(backend), m_control_path(std::move(control_path)) {}

  void start() {
    open_listener();
    if (m_listener < 0) {
      die(std::string("cannot listen: ") + std::strerror(errno));
    }
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    getsockname(m_listener, reinterpret_cast<sockaddr*>(&bound), &len);
    m_listen_at.addr.sin_port = bound.sin_port; // reopen on the same port after a reset

    m_control = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (m_control_path.size() >= sizeof un.sun_path) {
      die("control path too long: " + m_control_path);
    }
    std::memcpy(un.sun_path, m_control_path.c_str(), m_control_path.size() + 1);
    unlink(m_control_path.c_str());
    if (bind(m_control, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0 || listen(m_control, 16) != 0) {
      die("cannot listen on control socket " + m_control_path + ": " + std::strerror(errno));
    }
    std::printf("port %u\n", static_cast<unsigned>(ntohs(bound.sin_port)));
    (void)std::fflush(stdout);
  }

  void run() {
    sigset_t empty;
    sigemptyset(&empty);
    while (g_stop == 0) {
      step_flows();
      reap();
      std::vector<pollfd> fds;
      std::vector<Conn*> owners; // parallel to fds; nullptr for listeners and control
      build_pollset(fds, owners);
      const int timeout_ms = next_timeout();
      timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
      const int ready = ppoll(fds.data(), fds.size(), timeout_ms < 0 ? nullptr : &timeout, &empty);
      if (ready < 0) {
        if (errno == EINTR) {
          continue;
        }
        die(std::string("poll: ") + std::strerror(errno));
      }
      handle_events(fds, owners);
    }
    unlink(m_control_path.c_str());
  }

 private:
  void open_listener() {
    m_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(m_listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(m_listener, reinterpret_cast<const sockaddr*>(&m_listen_at.addr), sizeof m_listen_at.addr) != 0 ||
        listen(m_listener, 512) != 0) {
      const int saved = errno;
      close(m_listener);
      m_listener = -1;
      errno = saved;
    }
  }

  void set_mode(Mode mode, std::int64_t delay_ms, std::uint64_t replies_after = 0) {
    m_replies_after = mode == Mode::delay_replies ? replies_after : 0;
    m_mode = mode;
    m_delay_ms = mode == Mode::delay || mode == Mode::delay_replies ? delay_ms : 0;
    if (mode == Mode::reset) {
      for (auto& conn : m_conns) {
        conn->dead = true;
        conn->reset_peers = true;
      }
      reap();
      if (m_listener >= 0) {
        close(m_listener);
        m_listener = -1;
      }
      return;
    }
    // Leaving reset: listen again, on the same port. Retried by the loop if it fails.
    if (m_listener < 0) {
      open_listener();
    }
  }

  std::string command(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.remove_suffix(1);
    }
    if (line == "pass") {
      set_mode(Mode::pass, 0);
    } else if (line.substr(0, 6) == "delay " || line.substr(0, 14) == "delay-replies ") {
      const bool replies_only = line.substr(0, 14) == "delay-replies ";
      char* end = nullptr;
      std::string arg(line.substr(replies_only ? 14 : 6));
      long after = 0;
      if (const auto space = arg.find(" after "); replies_only && space != std::string::npos) {
        const std::string count = arg.substr(space + 7);
        after = std::strtol(count.c_str(), &end, 10);
        if (count.empty() || *end != '\0' || after < 0) {
          return "error bad chunk count: " + count;
        }
        arg.resize(space);
      }
      const long ms = std::strtol(arg.c_str(), &end, 10);
      if (arg.empty() || *end != '\0' || ms < 0) {
        return "error bad delay: " + arg;
      }
      set_mode(replies_only ? Mode::delay_replies : Mode::delay, ms, static_cast<std::uint64_t>(after));
    } else if (line == "blackhole") {
      set_mode(Mode::blackhole, 0);
    } else if (line == "reset") {
      set_mode(Mode::reset, 0);
    } else if (line != "status") {
      return "error unknown command: " + std::string(line);
    }
    std::uint64_t up = 0;
    std::uint64_t down = 0;
    for (const auto& conn : m_conns) {
      up += conn->up.bytes;
      down += conn->down.bytes;
    }
    return "ok mode=" + std::string(mode_name(m_mode)) + " delay_ms=" + std::to_string(m_delay_ms) +
           " replies_after=" + std::to_string(m_replies_after) + " listening=" + (m_listener >= 0 ? "1" : "0") +
           " conns=" + std::to_string(m_conns.size()) + " accepted=" + std::to_string(m_accepted) +
           " bytes_up=" + std::to_string(m_closed_up + up) + " bytes_down=" + std::to_string(m_closed_down + down);
  }

  bool moving() const { return m_mode == Mode::pass || m_mode == Mode::delay || m_mode == Mode::delay_replies; }

  // Reads what a source has, queued for the other side with the current delay.
  void read_into(Conn& conn, int from, Flow& flow) {
    if (flow.read_eof || flow.queued >= k_max_queued) {
      return;
    }
    char buf[k_read_size];
    const ssize_t n = recv(from, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return;
      }
      conn.dead = true;
      conn.reset_peers = true;
      return;
    }
    Chunk chunk;
    const bool delayed = m_mode != Mode::delay_replies || (&flow == &conn.down && conn.up.chunks > m_replies_after);
    chunk.due_ms = now_ms() + (delayed ? m_delay_ms : 0);
    if (n == 0) {
      flow.read_eof = true;
    } else {
      chunk.data.assign(buf, static_cast<std::size_t>(n));
      flow.queued += chunk.data.size();
      ++flow.chunks;
    }
    flow.queue.push_back(std::move(chunk));
  }

  // Writes the due head of a flow. An end-of-stream chunk closes the connection: Redis does
  // not use half-closed connections, and neither does rlock.
  void write_from(Conn& conn, Flow& flow, int to) {
    flow.write_blocked = false;
    const std::int64_t now = now_ms();
    while (!flow.queue.empty() && flow.queue.front().due_ms <= now && !conn.dead) {
      Chunk& head = flow.queue.front();
      if (head.data.empty()) {
        conn.dead = true;
        return;
      }
      const ssize_t n = send(to, head.data.data() + head.offset, head.data.size() - head.offset, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          flow.write_blocked = true;
        } else if (errno != EINTR) {
          conn.dead = true;
          conn.reset_peers = true;
        }
        return;
      }
      head.offset += static_cast<std::size_t>(n);
      flow.bytes += static_cast<std::uint64_t>(n);
      if (head.offset == head.data.size()) {
        flow.queued -= head.data.size();
        flow.queue.pop_front();
      }
    }
  }

  void step_flows() {
    if (m_listener < 0 && m_mode != Mode::reset) {
      open_listener();
    }
    if (!moving()) {
      return;
    }
    for (auto& conn : m_conns) {
      if (!conn->connecting) {
        write_from(*conn, conn->up, conn->server);
      }
      write_from(*conn, conn->down, conn->client);
    }
  }

  void reap() {
    for (auto it = m_conns.begin(); it != m_conns.end();) {
      Conn& conn = **it;
      if (!conn.dead) {
        ++it;
        continue;
      }
      m_closed_up += conn.up.bytes;
      m_closed_down += conn.down.bytes;
      if (conn.reset_peers) {
        close_with_reset(conn.client);
        close_with_reset(conn.server);
      } else {
        close(conn.client);
        if (conn.server >= 0) {
          close(conn.server);
        }
      }
      it = m_conns.erase(it);
    }
  }

  int next_timeout() const {
    if (m_listener < 0 && m_mode != Mode::reset) {
      return 10; // retry listening
    }
    if (!moving()) {
      return -1;
    }
    std::int64_t next = -1;
    const std::int64_t now = now_ms();
    for (const auto& conn : m_conns) {
      for (const Flow* flow : {&conn->up, &conn->down}) {
        if (flow == &conn->up && conn->connecting) {
          continue; // waits for POLLOUT on the backend socket
        }
        if (!flow->queue.empty() && !flow->write_blocked) {
          const std::int64_t wait = std::max<std::int64_t>(0, flow->queue.front().due_ms - now);
          next = next < 0 ? wait : std::min(next, wait);
        }
      }
    }
    return static_cast<int>(std::min<std::int64_t>(next, 1000));
  }

  void build_pollset(std::vector<pollfd>& fds, std::vector<Conn*>& owners) {
    auto add = [&](int fd, short events, Conn* owner) {
      fds.push_back(pollfd{fd, events, 0});
      owners.push_back(owner);
    };
    add(m_control, POLLIN, nullptr);
    for (const auto& client : m_control_clients) {
      add(client.fd, POLLIN, nullptr);
    }
    if (m_listener >= 0) {
      add(m_listener, POLLIN, nullptr);
    }
    if (!moving()) {
      return; // blackhole: not even errors are looked at until the partition heals
    }
    for (const auto& conn : m_conns) {
      short client_events = 0;
      short server_events = 0;
      if (!conn->up.read_eof && conn->up.queued < k_max_queued) {
        client_events |= POLLIN;
      }
      if (conn->down.write_blocked) {
        client_events |= POLLOUT;
      }
      if (conn->connecting) {
        server_events |= POLLOUT;
      } else {
        if (!conn->down.read_eof && conn->down.queued < k_max_queued) {
          server_events |= POLLIN;
        }
        if (conn->up.write_blocked) {
          server_events |= POLLOUT;
        }
      }
      add(conn->client, client_events, conn.get());
      add(conn->server, server_events, conn.get());
    }
  }

  // Connections first: a control command may close them all (reset), and the listener.
  void handle_events(const std::vector<pollfd>& fds, const std::vector<Conn*>& owners) {
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (owners[i] != nullptr && fds[i].revents != 0) {
        handle_conn_event(fds[i], *owners[i]);
      }
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const pollfd& p = fds[i];
      if (owners[i] != nullptr || p.revents == 0) {
        continue;
      }
      if (p.fd == m_control) {
        accept_control();
      } else if (p.fd == m_listener) {
        accept_clients();
      } else {
        serve_control(p.fd);
      }
    }
  }

  void handle_conn_event(const pollfd& p, Conn& conn) {
    if (conn.dead) {
      return;
    }
    if (p.fd == conn.server && conn.connecting) {
      int error = 0;
      socklen_t len = sizeof error;
      getsockopt(conn.server, SOL_SOCKET, SO_ERROR, &error, &len);
      if (error != 0) {
        conn.dead = true;
        conn.reset_peers = true; // the backend refused: the client sees a reset
        return;
      }
      conn.connecting = false;
      set_nodelay(conn.server);
      return;
    }
    const bool is_client = p.fd == conn.client;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      read_into(conn, p.fd, is_client ? conn.up : conn.down);
    }
    if ((p.revents & POLLOUT) != 0) {
      if (is_client) {
        write_from(conn, conn.down, conn.client);
      } else {
        write_from(conn, conn.up, conn.server);
      }
    }
  }

  void accept_clients() {
    for (;;) {
      const int client = accept4(m_listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        return;
      }
      ++m_accepted;
      set_nodelay(client);
      auto conn = std::make_unique<Conn>();
      conn->client = client;
      conn->server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int rc = connect(conn->server, reinterpret_cast<const sockaddr*>(&m_backend.addr), sizeof m_backend.addr);
      if (rc == 0) {
        conn->connecting = false;
        set_nodelay(conn->server);
      } else if (errno != EINPROGRESS) {
        conn->dead = true;
        conn->reset_peers = true;
      }
      m_conns.push_back(std::move(conn));
    }
  }

  void accept_control() {
    for (;;) {
      const int fd = accept4(m_control, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      m_control_clients.push_back(ControlClient{fd, {}});
    }
  }

  void serve_control(int fd) {
    auto client = std::find_if(m_control_clients.begin(), m_control_clients.end(),
                               [fd](const ControlClient& c) { return c.fd == fd; });
    if (client == m_control_clients.end()) {
      return;
    }
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      client->input.append(buf, static_cast<std::size_t>(n));
    }
    const auto newline = client->input.find('\n');
    if (newline == std::string::npos && n != 0 && client->input.size() < 4096) {
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close(fd);
        m_control_clients.erase(client);
      }
      return;
    }
    const std::string reply = command(client->input.substr(0, newline)) + "\n";
    // The reply is short: a unix socket buffer takes it whole; the client is blocking.
    [[maybe_unused]] const ssize_t sent = send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(fd);
    m_control_clients.erase(client);
  }

  Endpoint m_listen_at;
  Endpoint m_backend;
  std::string m_control_path;
  int m_listener = -1;
  int m_control = -1;
  Mode m_mode = Mode::pass;
  std::int64_t m_delay_ms = 0;
  std::uint64_t m_replies_after = 0; // delay-replies: a connection's client chunks that pass its replies at once
  std::list<std::unique_ptr<Conn>> m_conns;
  std::vector<ControlClient> m_control_clients;
  std::uint64_t m_accepted = 0;
  std::uint64_t m_closed_up = 0;
  std::uint64_t m_closed_down = 0;
};

} // namespace

int main(int argc, char** argv) {
  std::string listen_at = "127.0.0.1:0";
  std::string backend;
  std::string control;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    if (arg == "--listen") {
      listen_at = argv[i + 1];
    } else if (arg == "--backend") {
      backend = argv[i + 1];
    } else if (arg == "--control") {
      control = argv[i + 1];
    } else {
      die("unknown option " + std::string(arg));
    }
  }
  if (backend.empty() || control.empty() || argc % 2 == 0) {
    die("usage: rlock-fault-proxy [--listen HOST:PORT] --backend HOST:PORT --control PATH");
  }

  struct sigaction action {};
  action.sa_handler = on_stop;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  (void)signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr); // delivered only inside ppoll

  Proxy proxy(parse_endpoint(listen_at), parse_endpoint(backend), control);
  proxy.start();
  proxy.run();
  return 0;
}
