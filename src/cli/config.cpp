// SPDX-License-Identifier: MIT
// Config: flags over environment over defaults.
#include "cli/config.hpp"

#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

constexpr const char* k_default_url = "redis://127.0.0.1:6379";
constexpr const char* k_default_prefix = "rlock:";

// TLS settings: a flag replaces the URL's query key, which replaces the RLOCK_* variable. No
// variable can weaken verification: only the URL itself or a flag can.
void resolve_tls(const GlobalOptions& options, redis::Endpoint& endpoint) {
  redis::TlsSettings& tls = endpoint.tls;
  const bool url_has_settings = redis::has_tls_settings(tls);
  if (options.tls) tls.enabled = true;
  if (options.insecure && !options.tls_verify.empty() && options.tls_verify != "none") {
    throw UsageError(fmt::format("--insecure contradicts --tls-verify {}", options.tls_verify));
  }
  const bool flag_settings = !options.cacert.empty() || !options.cacertdir.empty() || !options.cert.empty() ||
                             !options.key.empty() || !options.tls_server_name.empty() || !options.tls_verify.empty() ||
                             options.insecure;
  if (!tls.enabled) {
    if (url_has_settings) {
      throw ConfigError(fmt::format("the URL {} sets TLS parameters but is not rediss://: use rediss:// or add --tls",
                                    endpoint.redacted()));
    }
    if (flag_settings) {
      throw ConfigError(fmt::format("TLS options given for {}, which is not a TLS URL: use rediss:// or add --tls",
                                    endpoint.redacted()));
    }
    return;
  }
  if (endpoint.kind == redis::Endpoint::Kind::unix_socket) {
    throw ConfigError("TLS over a unix socket is not supported: drop --tls, or use rediss://HOST:PORT");
  }
  auto pick = [](const std::string& flag, std::string& field, const char* variable) {
    if (!flag.empty()) {
      field = flag;
    } else if (field.empty()) {
      field = env_or_empty(variable);
    }
  };
  pick(options.cacert, tls.cacert, "RLOCK_CACERT");
  pick(options.cacertdir, tls.cacertdir, "RLOCK_CACERTDIR");
  pick(options.cert, tls.cert, "RLOCK_CERT");
  pick(options.key, tls.key, "RLOCK_KEY");
  pick(options.tls_server_name, tls.server_name, "RLOCK_TLS_SERVER_NAME");
  if (options.insecure || options.tls_verify == "none") {
    tls.verify = redis::TlsVerify::none;
  } else if (options.tls_verify == "ca") {
    tls.verify = redis::TlsVerify::ca;
  } else if (options.tls_verify == "full") {
    tls.verify = redis::TlsVerify::full;
  }
  switch (tls.verify) {
  case redis::TlsVerify::full: break;
  case redis::TlsVerify::ca:
    log::warn("TLS: the server's certificate chain is verified but not its name (verify=ca): any certificate "
              "that CA signed is accepted for {}",
              endpoint.host);
    break;
  case redis::TlsVerify::none:
    log::warn("TLS: the server's certificate is not verified (verify=none, --insecure): anyone between rlock and "
              "{} can read and change the traffic, passwords included",
              endpoint.host);
    break;
  }
}

} // namespace

std::string read_secret_file(const std::string& path, const char* what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw ConfigError(fmt::format("cannot read {} {}: {}", what, path, std::strerror(errno)));
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw ConfigError(fmt::format("cannot read {} {}: {}", what, path, std::strerror(err)));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > 65536) {
      ::close(fd);
      throw ConfigError(fmt::format("{} {} is larger than 64 KiB; is it the right file?", what, path));
    }
  }
  ::close(fd);
  auto newline = content.find_first_of("\r\n");
  if (newline != std::string::npos) content.resize(newline);
  if (content.empty()) throw ConfigError(fmt::format("{} {} is empty", what, path));
  return content;
}

Config resolve_config(const GlobalOptions& options) {
  Config config;
  std::string url = options.url;
  if (url.empty()) url = env_or_empty("RLOCK_URL");
  redis::UrlOrigin origin = redis::UrlOrigin::own;
  if (url.empty()) {
    url = env_or_empty("REDIS_URL");
    origin = redis::UrlOrigin::shared;
  }
  if (url.empty()) url = k_default_url;
  std::vector<std::string> ignored;
  config.connect.endpoint = redis::parse_url(url, origin, &ignored);
  for (const auto& key : ignored) {
    log::verbose("REDIS_URL: ignoring '{}', a setting of another client", key);
  }
  resolve_tls(options, config.connect.endpoint);

  if (!options.password.empty()) {
    log::warn("using a password on the command line is not safe: other users can see it in ps; "
              "use RLOCK_PASSWORD or --password-file");
    config.connect.endpoint.password = options.password;
  } else if (!options.password_file.empty()) {
    config.connect.endpoint.password = read_secret_file(options.password_file, "password file");
    config.password_file = options.password_file;
  } else if (!config.connect.endpoint.password) {
    if (std::string value = env_or_empty("RLOCK_PASSWORD"); !value.empty()) {
      config.connect.endpoint.password = value;
    } else if (std::string path = env_or_empty("RLOCK_PASSWORD_FILE"); !path.empty()) {
      config.connect.endpoint.password = read_secret_file(path, "password file (RLOCK_PASSWORD_FILE)");
      config.password_file = path;
    } else if (std::string cli_auth = env_or_empty("REDISCLI_AUTH"); !cli_auth.empty()) {
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
