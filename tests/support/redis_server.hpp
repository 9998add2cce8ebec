// SPDX-License-Identifier: MIT
// RedisServer: a real redis-server on a free loopback port in a temp dir, for integration tests.
#pragma once

#include "run.hpp"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace rlock::test {

struct RedisServerOptions {
  std::string password;                  // requirepass; command() then AUTHs with it
  std::vector<std::string> extra_config; // raw config lines, e.g. ACL "user ..." lines
  bool unix_socket = false;              // also listen on <dir>/redis.sock
  bool appendfsync_always = false;       // appendonly yes + appendfsync always
  // TLS: also listen with TLS on tls_port() with this certificate (PEM paths). The plaintext
  // port stays open for the fixture's own commands (command(), the PING at start).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;                  // tls-ca-cert-file: the CA client certificates must chain to
  std::string tls_auth_clients = "no"; // no, optional or yes
  std::vector<std::string> extra_args; // after the config file's path, e.g. "--sentinel"
};

// A port on 127.0.0.1 that was free a moment ago (bound with port 0, read back, closed).
int free_port();

// One RESP command over a fresh blocking TCP connection to 127.0.0.1:port, with a 5 s timeout.
// AUTHs first with `user`/`password` when a password is given. The reply as text: bulk and
// simple strings as their bytes, integers in decimal, nil as "(nil)", errors as their text
// ("ERR ...", "WRONGPASS ..."), arrays as their elements joined by '\n'. Throws SupportError
// when the server cannot be reached or does not answer.
std::string redis_command(int port, const std::vector<std::string>& argv, const std::string& password = {},
                          const std::string& user = {});

// The path of redis-server: $RLOCK_REDIS_SERVER, else redis-server on PATH. Throws
// SupportError when there is none: a missing server fails the tests, never skips them.
std::string redis_server_bin();
// The path of redis-cli: $RLOCK_REDIS_CLI, else redis-cli on PATH; throws as redis_server_bin().
std::string redis_cli_bin();

// Starts redis-server with a generated config in a fresh temp dir, waits until it answers
// PING (10 s at most, else throws with its log) and stops it on destruction (SIGTERM, then
// SIGKILL), removing the dir.
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const noexcept { return m_port; }
  int tls_port() const noexcept { return m_tls_port; } // 0 without options.tls_cert
  std::string url() const;                             // redis://127.0.0.1:PORT
  // rediss://HOST:TLS_PORT, then `query` ("?cacert=…") as given.
  std::string tls_url(const std::string& host = "localhost", const std::string& query = {}) const;
  // The options, to change (a certificate, say) between stop() and start().
  RedisServerOptions& options() noexcept { return m_options; }
  std::string unix_socket_path() const; // empty unless options.unix_socket
  pid_t pid() const noexcept { return m_process ? m_process->pid() : -1; }
  const std::string& dir() const noexcept { return m_dir.path(); }
  const std::string& password() const noexcept { return m_options.password; }
  std::string log() const; // the server's log file
  bool running() const noexcept { return m_process.has_value(); }

  // Stops the server (SIGTERM, wait up to 10 s, then SIGKILL); no-op when stopped.
  void stop();
  // SIGKILL, as a crash: no shutdown, no goodbye to replicas or the cluster; no-op when stopped.
  void kill();
  // Starts it again on the same port and waits for PING; no-op when running.
  void start();
  // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing while paused.
  void pause();
  void resume();

  // One command, as redis_command(), with the configured password.
  std::string command(const std::vector<std::string>& argv) const;
  // `commands` in one MULTI ... EXEC on one connection: EXEC's reply, one line per command.
  // Nothing else runs in between, so a read and, say, a CLIENT PAUSE happen at one instant.
  std::string transaction(const std::vector<std::vector<std::string>>& commands) const;

 private:
  void write_config() const;
  bool launch();               // false when the port was taken meanwhile
  pid_t answering_pid() const; // process_id from INFO server of whatever answers on the port

  RedisServerOptions m_options;
  TempDir m_dir;
  int m_port = 0;
  int m_tls_port = 0;
  std::optional<BackgroundProcess> m_process;
  bool m_paused = false;
};

} // namespace rlock::test
