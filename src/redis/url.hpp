// SPDX-License-Identifier: MIT
// Endpoint: where Redis is and how to log in, parsed from redis://, rediss:// and unix:// URLs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rlock::redis {

struct Endpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  bool tls = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path; // unix socket path
  int db = 0;
  std::string user; // empty: the default user
  std::optional<std::string> password;

  // The URL with any password replaced by "***", safe for messages and -v output.
  std::string redacted() const;
  // The URL, password included if there is one: what parse_url reads back as this endpoint.
  std::string url() const;
};

// Parses redis://[user[:password]@]host[:port][/db], rediss://… and unix:///path[?db=N].
// Throws ConfigError (exit 78) saying what is wrong.
Endpoint parse_url(std::string_view url);

} // namespace rlock::redis
