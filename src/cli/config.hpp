// SPDX-License-Identifier: MIT
// Config: the global options and environment, resolved into what the commands need.
#pragma once

#include "redis/connection.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace rlock::cli {

// The global options as typed; empty means "not given".
struct GlobalOptions {
  std::string url;
  std::string password; // typed on the command line (draws a warning)
  std::string password_file;
  std::string prefix;
  std::string connect_timeout;
  std::string io_timeout;
  // TLS (SPEC §6.1): over the URL's own query keys, which are over RLOCK_CACERT & co.
  bool tls = false;      // --tls: TLS for a redis:// URL
  bool insecure = false; // --insecure: --tls-verify none
  std::string cacert;
  std::string cacertdir;
  std::string cert;
  std::string key;
  std::string tls_server_name;
  std::string tls_verify; // full, ca or none
  bool verbose = false;
  bool quiet = false;
};

struct Config {
  redis::ConnectOptions connect;
  std::string prefix;
  std::string password_file; // the file the password came from, if it came from one
};

// Resolves URL (--url, RLOCK_URL, REDIS_URL, default), password (--password, --password-file,
// the URL's, RLOCK_PASSWORD, RLOCK_PASSWORD_FILE, REDISCLI_AUTH — first found wins), TLS (flag >
// the URL's query > RLOCK_CACERT, RLOCK_CACERTDIR, RLOCK_CERT, RLOCK_KEY, RLOCK_TLS_SERVER_NAME),
// prefix and timeouts. Warns when TLS verification is weakened.
// Throws ConfigError for a bad URL or unreadable file, UsageError for bad durations.
Config resolve_config(const GlobalOptions& options);

// Reads a secret file: its first line, without the newline. Throws ConfigError.
std::string read_secret_file(const std::string& path, const char* what);

} // namespace rlock::cli
