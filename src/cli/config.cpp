// SPDX-License-Identifier: MIT
// Config: flags over environment over defaults.
#include "cli/config.hpp"

#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cstdlib>
#include <fmt/format.h>

namespace rlock::cli {

namespace {

// The variable's value, or "" when it is unset. Set but empty is an error, never "unset": an
// empty RLOCK_URL would otherwise mean localhost, so that each host locks its own Redis.
std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return {};
  if (*value == '\0') throw ConfigError(fmt::format("{} is set but empty: give it a value or unset it", name));
  return value;
}

// A password variable: empty counts as unset, as for redis-cli (a CI secret that is not
// defined expands to ""). Unlike an empty URL or prefix, it cannot point rlock elsewhere.
std::string password_env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

constexpr const char* k_default_url = "redis://127.0.0.1:6379";
constexpr const char* k_default_prefix = "rlock:";

} // namespace

std::string read_secret_file(const std::string& path, const char* what) {
  std::string content = read_regular_file(path, what);
  auto newline = content.find_first_of("\r\n");
  if (newline != std::string::npos) content.resize(newline);
  if (content.empty()) throw ConfigError(fmt::format("{} {} is empty", what, printable(path)));
  return content;
}

Config resolve_config(const GlobalOptions& options) {
  Config config;
  std::string url = options.url;
  if (url.empty()) url = env_or_empty("RLOCK_URL");
  if (url.empty()) url = env_or_empty("REDIS_URL");
  if (url.empty()) url = k_default_url;
  config.connect.endpoint = redis::parse_url(url);

  if (!options.password.empty()) {
    log::warn("using a password on the command line is not safe: other users can see it in ps; "
              "use RLOCK_PASSWORD or --password-file");
    config.connect.endpoint.password = options.password;
  } else if (!options.password_file.empty()) {
    config.connect.endpoint.password = read_secret_file(options.password_file, "password file");
    config.password_file = options.password_file;
  } else if (!config.connect.endpoint.password) {
    if (std::string value = password_env("RLOCK_PASSWORD"); !value.empty()) {
      config.connect.endpoint.password = value;
    } else if (std::string path = env_or_empty("RLOCK_PASSWORD_FILE"); !path.empty()) {
      config.connect.endpoint.password = read_secret_file(path, "password file (RLOCK_PASSWORD_FILE)");
      config.password_file = path;
    } else if (std::string cli_auth = password_env("REDISCLI_AUTH"); !cli_auth.empty()) {
      config.connect.endpoint.password = cli_auth;
    }
  }

  config.prefix = options.prefix;
  if (config.prefix.empty()) config.prefix = env_or_empty("RLOCK_PREFIX");
  if (config.prefix.empty()) config.prefix = k_default_prefix;
  for (char c : config.prefix) {
    if (c == '{' || c == '}' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw UsageError(
          fmt::format("invalid prefix '{}': braces and control characters are not allowed", printable(config.prefix)));
    }
  }

  if (!options.connect_timeout.empty()) {
    config.connect.connect_timeout = parse_duration(options.connect_timeout, "--connect-timeout");
  }
  if (!options.io_timeout.empty()) {
    config.connect.io_timeout = parse_duration(options.io_timeout, "--io-timeout");
  }
  if (config.connect.connect_timeout.count() <= 0 || config.connect.io_timeout.count() <= 0) {
    throw UsageError("--connect-timeout and --io-timeout must be greater than zero");
  }
  return config;
}

} // namespace rlock::cli
