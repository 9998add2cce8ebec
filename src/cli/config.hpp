// SPDX-License-Identifier: MIT
// Config: the global options, the environment and the configuration file, resolved into what
// the commands need, each setting with the place it came from.
#pragma once

#include "redis/connection.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::cli {

// The global options as typed; an empty string means "not given".
struct GlobalOptions {
  std::string url;
  std::string password; // typed on the command line (draws a warning)
  std::string password_file;
  std::string sentinel_password_file; // the sentinels' password (redis+sentinel://)
  std::string prefix;
  std::string connect_timeout;
  std::string io_timeout;
  std::string node_timeout;               // quorum mode: the most one node's answer is waited for
  std::string audit;                      // "yes" for --audit (rlock(1), AUDIT)
  std::optional<std::string> config_file; // --config, as given (empty is an error)
  std::optional<std::string> profile;     // --profile, as given (empty is an error)
  // TLS (rlock(1), TLS): a flag is over the URL's own query keys, which are over RLOCK_CACERT & co.
  std::string tls;       // "yes" for --tls: TLS for a redis:// URL
  bool insecure = false; // --insecure: --tls-verify none
  std::string cacert;
  std::string cacertdir;
  std::string cert;
  std::string key;
  std::string tls_server_name;
  std::string tls_verify;        // full, ca or none
  std::string tls_session_cache; // yes or no: resume TLS sessions from the private cache
  std::string events;            // --events FILE|-: lifecycle events, one JSON line each
  std::string metrics_textfile;  // --metrics-textfile FILE: Prometheus textfile-collector metrics
  bool verbose = false;
  bool quiet = false;

  bool operator==(const GlobalOptions&) const = default;
};

// Where a setting came from, in increasing precedence: a later origin overrides an earlier one.
enum class Origin {
  built_in,    // rlock's default
  foreign_env, // another program's variable: REDIS_URL, REDISCLI_AUTH
  file,        // the config file's unnamed section
  profile,     // the config file's chosen [profile NAME]
  env,         // an RLOCK_* variable
  url,         // the URL's own query (TLS settings only)
  flag,        // the command line
};

struct Source {
  Origin origin = Origin::built_in;
  std::string detail; // "--url", "RLOCK_URL", "FILE:LINE", "prod FILE:LINE" …
  // For people: "flag --url", "env RLOCK_URL", "FILE:3", "profile prod FILE:7", "default".
  std::string describe() const;
};

// How a setting's text is checked, and what a relative path in the file is relative to
// (`output`: a path, or "-" for standard output).
enum class ValueKind { text, url, path, output, duration, prefix, yes_no, tls_verify, replicas };

// One setting that a flag, a variable and the configuration file can give. Its name is the long
// option's, the file's key and what `rlock config show` prints. Adding a setting is one line
// in k_settings (config.cpp), plus its field in GlobalOptions when it has a global flag.
struct SettingSpec {
  std::string_view name;
  std::string GlobalOptions::*flag; // nullptr: no global flag (a command option may override it)
  std::string_view env;             // RLOCK_* variable, or ""
  std::string_view foreign_env;     // another program's variable, or ""
  std::string_view built_in;        // default, or "" (unset)
  ValueKind kind;
};

struct Setting {
  const SettingSpec* spec = nullptr;
  std::string value; // empty: unset
  Source source;
};

// What resolution reads besides the options: the environment and the system-wide file. Tests
// replace both; rlock uses the process environment and /etc/rlock/config.
struct ConfigSources {
  std::function<const char*(const char*)> getenv = [](const char* name) { return std::getenv(name); };
  std::string system_file = "/etc/rlock/config";
};

// Every setting, resolved: which file and profile were read, and each value with its source.
struct Settings {
  std::string file;                     // the config file read, or "" for none
  Source file_source;                   // what chose it: --config, RLOCK_CONFIG, XDG_CONFIG_HOME …
  std::vector<std::string> files_tried; // the default paths looked at, in order
  std::string profile;                  // the profile chosen, or ""
  Source profile_source;                // --profile or RLOCK_PROFILE
  std::vector<Setting> settings;        // one per k_settings entry, in its order

  // The setting called `name`; a name not in k_settings is a programming error (throws).
  const Setting& get(std::string_view name) const;
  const std::string& value(std::string_view name) const { return get(name).value; }
  // Sets `name` to `value` from `source` unless what it holds already comes from a higher
  // origin (e.g. a TLS setting in the URL's query: over the environment, under a flag).
  void offer(std::string_view name, std::string value, Source source);
};

// Finds and reads the config file, picks the profile and resolves every setting of k_settings:
// flag > RLOCK_* env > profile > file defaults > other programs' variables > built-in.
// Throws ConfigError (78) for a bad or unsafe file, a missing --config file or profile, a bad
// value in the file (with FILE:LINE); UsageError (64) for an empty --config or --profile.
Settings resolve_settings(const GlobalOptions& options, const ConfigSources& sources = {});

struct Config {
  redis::ConnectOptions connect;
  std::string prefix;
  std::chrono::milliseconds ttl{30'000}; // the default --ttl of exec, acquire and renew
  // The defaults of --min-replicas and --min-replicas-timeout (none: from the TTL).
  std::int64_t min_replicas = 0;
  std::optional<std::chrono::milliseconds> min_replicas_timeout;
  // Quorum mode (rlock(1), QUORUM): the url setting named three or more single nodes, one
  // ConnectOptions each (`connect` is the first); empty otherwise. --node-timeout as given
  // (none: from the TTL, node_timeout_for()).
  std::vector<redis::ConnectOptions> quorum;
  std::optional<std::chrono::milliseconds> node_timeout;
  // --audit, RLOCK_AUDIT or the file's `audit`: append each acquisition and release to the
  // lock's audit log (rlock(1), AUDIT).
  bool audit = false;
  Settings settings;
  std::string password_from; // where the password came from, for people; "" when there is none
  std::string password_file; // the file the password came from, if it came from one
  std::string shown_url;     // the url setting as given, its password masked (`config show`)
  std::string job_url;       // the URL resolved, without its password: the job's RLOCK_URL
};

// resolve_settings, then URL, password (--password, --password-file, the URL's, RLOCK_PASSWORD,
// RLOCK_PASSWORD_FILE or the config file's password-file, REDISCLI_AUTH — first found wins), TLS
// (flag > the URL's query > RLOCK_CACERT, RLOCK_CACERTDIR, RLOCK_CERT, RLOCK_KEY,
// RLOCK_TLS_SERVER_NAME > profile > file), prefix and timeouts checked. Warns when TLS
// verification is weakened. Throws ConfigError for a bad URL, unreadable file or TLS settings
// on the command line for a plaintext URL, UsageError for bad durations on the command line or
// in the environment.
Config resolve_config(const GlobalOptions& options, const ConfigSources& sources = {});

// The default --node-timeout for a lease of `ttl`: min(ttl/100, 1s), at least 20 ms.
std::chrono::milliseconds node_timeout_for(std::chrono::milliseconds ttl);

// Reads a secret file: its first line, without the newline. Throws ConfigError.
std::string read_secret_file(const std::string& path, const char* what);

} // namespace rlock::cli
