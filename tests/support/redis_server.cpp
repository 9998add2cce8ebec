// SPDX-License-Identifier: MIT
// RedisServer: generated config, start and PING wait, stop/restart/pause, and a tiny RESP client.
#include "redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace rlock::test {

namespace {

using Clock = std::chrono::steady_clock;

class Socket {
 public:
  explicit Socket(int fd) : m_fd(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  int get() const { return m_fd; }

 private:
  int m_fd;
};

// Reads RESP2 replies from a blocking socket.
class ReplyReader {
 public:
  explicit ReplyReader(int fd) : m_fd(fd) {}

  // One reply rendered as text (see redis_command).
  std::string read_reply() {
    const std::string line = read_line();
    if (line.empty()) {
      throw SupportError("redis: empty reply line");
    }
    const std::string body = line.substr(1);
    switch (line[0]) {
    case '+': return body;
    case '-': return body;
    case ':': return body;
    case '$': {
      const long length = std::stol(body);
      if (length < 0) {
        return "(nil)";
      }
      std::string data = read_exact(static_cast<std::size_t>(length) + 2);
      data.resize(static_cast<std::size_t>(length));
      return data;
    }
    case '*': {
      const long count = std::stol(body);
      if (count < 0) {
        return "(nil)";
      }
      std::string joined;
      for (long i = 0; i < count; ++i) {
        if (i > 0) {
          joined += '\n';
        }
        joined += read_reply();
      }
      return joined;
    }
    default: throw SupportError(fmt::format("redis: not a RESP reply: \"{}\"", line));
    }
  }

  // True when the next reply is an error (peeks at the type byte).
  bool next_is_error() {
    fill(1);
    return m_buffer[0] == '-';
  }

 private:
  void fill(std::size_t wanted) {
    while (m_buffer.size() < wanted) {
      char chunk[4096];
      const auto got = ::recv(m_fd, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        throw SupportError(fmt::format("redis: no reply: {}", std::strerror(errno)));
      }
      if (got == 0) {
        throw SupportError("redis: connection closed before the reply");
      }
      m_buffer.append(chunk, static_cast<std::size_t>(got));
    }
  }

  std::string read_line() {
    for (;;) {
      const auto end = m_buffer.find("\r\n");
      if (end != std::string::npos) {
        std::string line = m_buffer.substr(0, end);
        m_buffer.erase(0, end + 2);
        return line;
      }
      fill(m_buffer.size() + 1);
    }
  }

  std::string read_exact(std::size_t count) {
    fill(count);
    std::string data = m_buffer.substr(0, count);
    m_buffer.erase(0, count);
    return data;
  }

  int m_fd;
  std::string m_buffer;
};

std::string encode(const std::vector<std::string>& argv) {
  std::string out = fmt::format("*{}\r\n", argv.size());
  for (const auto& arg : argv) {
    out += fmt::format("${}\r\n", arg.size());
    out += arg;
    out += "\r\n";
  }
  return out;
}

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw SupportError(fmt::format("redis: send: {}", std::strerror(errno)));
    }
    sent += static_cast<std::size_t>(n);
  }
}

// Sends `commands` on one connection, in one write, and returns the last one's reply.
std::string commands_with_timeout(int port, const std::vector<std::vector<std::string>>& commands,
                                  const std::string& password, const std::string& user,
                                  std::chrono::milliseconds timeout) {
  Socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    throw SupportError(fmt::format("socket: {}", std::strerror(errno)));
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw SupportError(fmt::format("redis: connect to 127.0.0.1:{}: {}", port, std::strerror(errno)));
  }
  ReplyReader reader(sock.get());
  if (!password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!user.empty()) {
      auth.push_back(user);
    }
    auth.push_back(password);
    send_all(sock.get(), encode(auth));
    const bool failed = reader.next_is_error();
    const std::string reply = reader.read_reply();
    if (failed) {
      throw SupportError(fmt::format("redis: AUTH failed: {}", reply));
    }
  }
  std::string out;
  for (const auto& argv : commands) {
    out += encode(argv);
  }
  send_all(sock.get(), out);
  std::string reply;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    reply = reader.read_reply();
  }
  return reply;
}

} // namespace

int free_port() {
  Socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (sock.get() < 0 || ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw SupportError(fmt::format("bind 127.0.0.1:0: {}", std::strerror(errno)));
  }
  socklen_t length = sizeof address;
  ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

std::string redis_command(int port, const std::vector<std::string>& argv, const std::string& password,
                          const std::string& user) {
  return commands_with_timeout(port, {argv}, password, user, 5s);
}

namespace {

// $ENV_NAME when set, else PROGRAM on PATH or in /usr/sbin (some distributions install
// redis-server there, off a user's PATH). Throws SupportError when there is none.
std::string find_redis_program(const char* env_name, const std::string& program) {
  const char* configured = std::getenv(env_name);
  std::string path;
  if (configured != nullptr && *configured != '\0' &&
      std::string_view(configured).find("NOTFOUND") == std::string_view::npos) {
    path = configured;
  } else {
    const char* env_path = std::getenv("PATH");
    std::string dirs = std::string(env_path != nullptr ? env_path : "/usr/bin:/bin") + ":/usr/sbin";
    std::size_t begin = 0;
    while (begin <= dirs.size()) {
      const auto end = std::min(dirs.find(':', begin), dirs.size());
      const std::string candidate = dirs.substr(begin, end - begin) + "/" + program;
      if (end > begin && ::access(candidate.c_str(), X_OK) == 0) {
        path = candidate;
        break;
      }
      begin = end + 1;
    }
  }
  if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
    throw SupportError(fmt::format("{} not found ({}): install it or set {}; the integration tests need a real "
                                   "server and are never skipped",
                                   program, path.empty() ? "not on PATH" : path, env_name));
  }
  return path;
}

} // namespace

std::string redis_server_bin() { return find_redis_program("RLOCK_REDIS_SERVER", "redis-server"); }

std::string redis_cli_bin() { return find_redis_program("RLOCK_REDIS_CLI", "redis-cli"); }

RedisServer::RedisServer(RedisServerOptions options) : m_options(std::move(options)) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    m_port = free_port();
    if (!m_options.tls_cert.empty()) {
      do {
        m_tls_port = free_port();
      } while (m_tls_port == m_port);
    }
    if (launch()) {
      return;
    }
  }
  throw SupportError(fmt::format("redis-server did not start on a free port after 5 attempts\n{}", log()));
}

RedisServer::~RedisServer() {
  try {
    stop();
  } catch (...) {
    // The BackgroundProcess destructor still kills and reaps it.
  }
}

std::string RedisServer::url() const { return fmt::format("redis://127.0.0.1:{}", m_port); }

std::string RedisServer::tls_url(const std::string& host, const std::string& query) const {
  return fmt::format("rediss://{}:{}{}", host, m_tls_port, query);
}

std::string RedisServer::unix_socket_path() const {
  return m_options.unix_socket ? m_dir.file("redis.sock") : std::string();
}

std::string RedisServer::log() const { return try_read_file(m_dir.file("redis.log")).value_or(""); }

void RedisServer::write_config() const {
  std::string config;
  config += fmt::format("port {}\n", m_port);
  config += "bind 127.0.0.1\n";
  config += "daemonize no\n";
  config += fmt::format("dir \"{}\"\n", m_dir.path());
  config += fmt::format("logfile \"{}\"\n", m_dir.file("redis.log"));
  config += "save \"\"\n";
  if (m_options.appendfsync_always) {
    config += "appendonly yes\nappendfsync always\n";
  } else {
    config += "appendonly no\n";
  }
  if (m_options.unix_socket) {
    config += fmt::format("unixsocket \"{}\"\nunixsocketperm 700\n", unix_socket_path());
  }
  if (!m_options.password.empty()) {
    config += fmt::format("requirepass \"{}\"\n", m_options.password);
  }
  if (!m_options.tls_cert.empty()) {
    config += fmt::format("tls-port {}\n", m_tls_port);
    config += fmt::format("tls-cert-file \"{}\"\ntls-key-file \"{}\"\n", m_options.tls_cert, m_options.tls_key);
    if (!m_options.tls_ca.empty()) config += fmt::format("tls-ca-cert-file \"{}\"\n", m_options.tls_ca);
    config += fmt::format("tls-auth-clients {}\n", m_options.tls_auth_clients);
  }
  for (const auto& line : m_options.extra_config) {
    config += line;
    config += '\n';
  }
  write_file(m_dir.file("redis.conf"), config);
}

bool RedisServer::launch() {
  write_config();
  // Truncate the log so that "address in use" refers to this attempt.
  write_file(m_dir.file("redis.log"), "");
  BackgroundOptions options;
  options.stdout_path = m_dir.file("redis.stdout");
  options.stderr_path = m_dir.file("redis.stderr");
  options.cwd = m_dir.path();
  options.die_with_parent = true;
  std::vector<std::string> argv{redis_server_bin(), m_dir.file("redis.conf")};
  argv.insert(argv.end(), m_options.extra_args.begin(), m_options.extra_args.end());
  m_process.emplace(argv, options);
  m_paused = false;

  const auto deadline = Clock::now() + 10s;
  std::string last_error;
  while (Clock::now() < deadline) {
    if (!m_process->running()) {
      const std::string text = log() + m_process->err();
      m_process.reset();
      if (text.find("Address already in use") != std::string::npos) {
        return false;
      }
      throw SupportError(fmt::format("redis-server exited at startup:\n{}", text));
    }
    try {
      const std::string reply = commands_with_timeout(m_port, {{"PING"}}, m_options.password, {}, 1000ms);
      if (reply == "PONG") {
        // Two tests may be handed the same free port: the PONG may come from the other test's
        // server while ours is about to fail with "address in use". Ours says its own pid.
        if (answering_pid() == m_process->pid()) return true;
        m_process->kill();
        m_process.reset();
        return false;
      }
      last_error = reply;
    } catch (const SupportError& error) {
      last_error = error.what();
    }
    std::this_thread::sleep_for(5ms);
  }
  m_process->kill();
  m_process.reset();
  throw SupportError(
      fmt::format("redis-server on port {} did not answer PING within 10 s ({})\n{}", m_port, last_error, log()));
}

pid_t RedisServer::answering_pid() const {
  const std::string info = commands_with_timeout(m_port, {{"INFO", "server"}}, m_options.password, {}, 1000ms);
  const std::string_view field = "process_id:";
  const auto at = info.find(field);
  if (at == std::string::npos) throw SupportError("INFO server without process_id:\n" + info);
  return static_cast<pid_t>(std::stol(info.substr(at + field.size())));
}

void RedisServer::stop() {
  if (!m_process) {
    return;
  }
  if (m_paused) {
    m_process->signal(SIGCONT);
    m_paused = false;
  }
  m_process->signal(SIGTERM);
  if (!m_process->try_wait(10s)) {
    m_process->kill();
  }
  m_process.reset();
}

void RedisServer::kill() {
  if (m_process) {
    m_process->kill();
    m_process.reset();
    m_paused = false;
  }
}

void RedisServer::start() {
  if (m_process) {
    return;
  }
  if (!launch()) {
    throw SupportError(fmt::format("redis-server cannot restart: port {} is taken", m_port));
  }
}

void RedisServer::pause() {
  if (m_process && !m_paused) {
    m_process->signal(SIGSTOP);
    m_paused = true;
  }
}

void RedisServer::resume() {
  if (m_process && m_paused) {
    m_process->signal(SIGCONT);
    m_paused = false;
  }
}

std::string RedisServer::command(const std::vector<std::string>& argv) const {
  return redis_command(m_port, argv, m_options.password);
}

std::string RedisServer::transaction(const std::vector<std::vector<std::string>>& commands) const {
  std::vector<std::vector<std::string>> all{{"MULTI"}};
  all.insert(all.end(), commands.begin(), commands.end());
  all.push_back({"EXEC"});
  return commands_with_timeout(m_port, all, m_options.password, {}, 5s);
}

} // namespace rlock::test
