// SPDX-License-Identifier: MIT
// Config: flags over RLOCK_* variables over the config file's profile over its defaults over
// other programs' variables over built-in defaults, each setting remembering where it came from.
#include "cli/config.hpp"

#include "cli/config_file.hpp"
#include "cli/options.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

// Every setting a flag, a variable or the config file can give; adding one is one line here.
// The TLS settings join with their flags: precedence flag > URL query > env > profile > file.
constexpr SettingSpec k_settings[] = {
    // name            flag                              env             foreign_env  built-in
    {"url", &GlobalOptions::url, "RLOCK_URL", "REDIS_URL", "redis://127.0.0.1:6379", ValueKind::url},
    {"password-file", &GlobalOptions::password_file, "RLOCK_PASSWORD_FILE", "", "", ValueKind::path},
    {"sentinel-password-file", &GlobalOptions::sentinel_password_file, "", "", "", ValueKind::path},
    {"prefix", &GlobalOptions::prefix, "RLOCK_PREFIX", "", "rlock:", ValueKind::prefix},
    {"connect-timeout", &GlobalOptions::connect_timeout, "", "", "2s", ValueKind::duration},
    {"io-timeout", &GlobalOptions::io_timeout, "", "", "5s", ValueKind::duration},
    {"node-timeout", &GlobalOptions::node_timeout, "", "", "", ValueKind::duration},
    {"ttl", nullptr, "", "", "30s", ValueKind::duration},
    {"min-replicas", nullptr, "", "", "0", ValueKind::replicas},
    {"min-replicas-timeout", nullptr, "", "", "", ValueKind::duration},
    {"tls", &GlobalOptions::tls, "", "", "no", ValueKind::yes_no},
    {"audit", &GlobalOptions::audit, "RLOCK_AUDIT", "", "no", ValueKind::yes_no},
    {"cacert", &GlobalOptions::cacert, "RLOCK_CACERT", "", "", ValueKind::path},
    {"cacertdir", &GlobalOptions::cacertdir, "RLOCK_CACERTDIR", "", "", ValueKind::path},
    {"cert", &GlobalOptions::cert, "RLOCK_CERT", "", "", ValueKind::path},
    {"key", &GlobalOptions::key, "RLOCK_KEY", "", "", ValueKind::path},
    {"tls-server-name", &GlobalOptions::tls_server_name, "RLOCK_TLS_SERVER_NAME", "", "", ValueKind::text},
    // No variable can weaken verification (rlock(1), TLS): only a flag, the URL itself or the file.
    {"tls-verify", &GlobalOptions::tls_verify, "", "", "full", ValueKind::tls_verify},
    {"tls-session-cache", &GlobalOptions::tls_session_cache, "RLOCK_TLS_SESSION_CACHE", "", "yes", ValueKind::yes_no},
    {"events", &GlobalOptions::events, "RLOCK_EVENTS", "", "", ValueKind::output},
    {"metrics-textfile", &GlobalOptions::metrics_textfile, "RLOCK_METRICS_TEXTFILE", "", "", ValueKind::path},
};

// The TLS settings besides `tls` itself, which only a TLS connection uses.
constexpr std::string_view k_tls_settings[] = {"cacert",     "cacertdir",        "cert", "key", "tls-server-name",
                                               "tls-verify", "tls-session-cache"};

constexpr std::size_t k_max_config_size = std::size_t{64} * 1024;

// The URLs of a url setting: one, or several separated by blanks (a quorum).
std::vector<std::string> split_urls(std::string_view text) {
  std::vector<std::string> urls;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t start = text.find_first_not_of(" \t\n", at);
    if (start == std::string_view::npos) break;
    const std::size_t end = std::min(text.find_first_of(" \t\n", start), text.size());
    urls.emplace_back(text.substr(start, end - start));
    at = end;
  }
  if (urls.empty()) urls.emplace_back(text);
  return urls;
}

const SettingSpec* find_spec(std::string_view name) {
  for (const SettingSpec& spec : k_settings) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string known_keys() {
  std::string keys;
  for (const SettingSpec& spec : k_settings) {
    if (!keys.empty()) keys += ", ";
    keys += spec.name;
  }
  return keys;
}

// A prefix becomes part of every key and of messages: no braces (they would move the hash
// slot), no control characters. Returns what is wrong, or "".
std::string prefix_problem(std::string_view prefix) {
  for (char c : prefix) {
    if (c == '{' || c == '}' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return fmt::format("invalid prefix '{}': braces and control characters are not allowed", printable(prefix));
    }
  }
  return {};
}

// yes/no (also true/false, on/off, 1/0), or nothing for anything else.
std::optional<bool> yes_no_value(std::string_view text) {
  if (text == "yes" || text == "true" || text == "on" || text == "1") return true;
  if (text == "no" || text == "false" || text == "off" || text == "0") return false;
  return std::nullopt;
}

std::optional<redis::TlsVerify> tls_verify_value(std::string_view text) {
  if (text == "full") return redis::TlsVerify::full;
  if (text == "ca") return redis::TlsVerify::ca;
  if (text == "none") return redis::TlsVerify::none;
  return std::nullopt;
}

// A config file as read: its entries and what its mode allows others to do.
struct LoadedFile {
  ConfigFile config;
  bool readable_by_others = false;
};

// Reads the config file at `path`. Without `must_exist`, a missing file is no file. The file
// is opened without blocking and must be a regular file (a FIFO or a device would hang or
// stream forever), small, and writable by nobody but its owner, who is the user or root.
std::optional<LoadedFile> load_config_file(const std::string& path, bool must_exist) {
  const std::string shown = printable(path);
  if (path == "/dev/null") return LoadedFile{parse_config_file("", path), false}; // "no file", on purpose
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    const int err = errno;
    if (!must_exist && (err == ENOENT || err == ENOTDIR)) return std::nullopt;
    if (is_resource_shortage(err)) throw SystemError(fmt::format("cannot open config file {}", shown), err);
    throw ConfigError(fmt::format("cannot read config file {}: {}", shown, std::strerror(err)));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    throw ConfigError(fmt::format("cannot read config file {}: {}", shown, std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    throw ConfigError(fmt::format("config file {} is not a regular file", shown));
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw ConfigError(fmt::format("config file {} is writable by group or others, who could point rlock at "
                                  "their own Redis: run chmod go-w {}",
                                  shown, shell_quote(shown)));
  }
  if (info.st_uid != ::geteuid() && info.st_uid != 0) {
    throw ConfigError(fmt::format("config file {} belongs to uid {}, who could change where rlock connects: "
                                  "chown it to yourself or root",
                                  shown, info.st_uid));
  }
  if (static_cast<std::size_t>(info.st_size) > k_max_config_size) {
    throw ConfigError(fmt::format("config file {} is larger than 64 KiB; is it the right file?", shown));
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(fmt::format("cannot read config file {}: {}", shown, std::strerror(errno)));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > k_max_config_size) {
      throw ConfigError(fmt::format("config file {} is larger than 64 KiB; is it the right file?", shown));
    }
  }
  return LoadedFile{parse_config_file(text, path), (info.st_mode & (S_IRGRP | S_IROTH)) != 0};
}

// Checks every entry of every section, used or not, so that a mistake shows the first time the
// file is read rather than the day its profile is; makes relative paths relative to the file.
void check_entries(LoadedFile& loaded) {
  ConfigFile& file = loaded.config;
  for (ConfigSection& section : file.sections) {
    for (ConfigEntry& entry : section.entries) {
      const std::string where = fmt::format("{}:{}", printable(file.path), entry.line);
      if (entry.key == "password") {
        throw ConfigError(fmt::format("{}: a password is not allowed in a config file; put it alone in a file "
                                      "only you can read (chmod 600) and set password-file = PATH",
                                      where));
      }
      const SettingSpec* spec = find_spec(entry.key);
      if (spec == nullptr) {
        throw ConfigError(fmt::format("{}: unknown key '{}'; the keys are: {}", where, entry.key, known_keys()));
      }
      switch (spec->kind) {
      case ValueKind::url: {
        bool password = false;
        try {
          for (const std::string& one : split_urls(entry.value)) password = redis::parse_url(one).password || password;
        } catch (const Error& error) {
          throw ConfigError(fmt::format("{}: {}", where, error.what()));
        }
        if (password && loaded.readable_by_others) {
          throw ConfigError(fmt::format("{}: the URL holds a password and {} is readable by others: run chmod "
                                        "600 {}, or move the password to a file named by password-file",
                                        where, printable(file.path), shell_quote(printable(file.path))));
        }
        break;
      }
      case ValueKind::duration: {
        try {
          (void)parse_duration_at_least(entry.value, entry.key, entry.key == "ttl" ? k_min_ttl : lock::Millis(1));
        } catch (const Error& error) {
          throw ConfigError(fmt::format("{}: {}", where, error.what()));
        }
        break;
      }
      case ValueKind::prefix:
        if (std::string problem = prefix_problem(entry.value); !problem.empty()) {
          throw ConfigError(fmt::format("{}: {}", where, problem));
        }
        break;
      case ValueKind::path:
      case ValueKind::output:
        if (spec->kind == ValueKind::output && entry.value == "-") break;
        if (!entry.value.starts_with('/')) entry.value = directory_of(file.path) + "/" + entry.value;
        break;
      case ValueKind::yes_no:
        if (!yes_no_value(entry.value)) {
          throw ConfigError(
              fmt::format("{}: {} must be yes or no, not '{}'", where, entry.key, printable(entry.value)));
        }
        break;
      case ValueKind::tls_verify:
        if (!tls_verify_value(entry.value)) {
          throw ConfigError(
              fmt::format("{}: {} must be full, ca or none, not '{}'", where, entry.key, printable(entry.value)));
        }
        break;
      case ValueKind::replicas: try { (void)parse_min_replicas(entry.value, entry.key);
        } catch (const Error& error) {
          throw ConfigError(fmt::format("{}: {}", where, error.what()));
        }
        break;
      case ValueKind::text: break;
      }
    }
  }
}

// Finds the config file: --config, RLOCK_CONFIG, then the first that exists of
// $XDG_CONFIG_HOME/rlock/config (or ~/.config/rlock/config) and the system file.
std::optional<LoadedFile> find_config_file(const GlobalOptions& options, const ConfigSources& sources,
                                           Settings& settings) {
  auto env = [&](const char* name) {
    const char* value = sources.getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  if (options.config_file) {
    if (options.config_file->empty()) {
      throw UsageError("--config needs a file name (--config /dev/null reads none)");
    }
    settings.file = *options.config_file;
    settings.file_source = Source{Origin::flag, "--config"};
    return load_config_file(settings.file, true);
  }
  if (std::string path = env("RLOCK_CONFIG"); !path.empty()) {
    settings.file = path;
    settings.file_source = Source{Origin::env, "RLOCK_CONFIG"};
    return load_config_file(settings.file, true);
  }
  std::vector<std::pair<std::string, std::string>> candidates; // path, what named it
  if (std::string xdg = env("XDG_CONFIG_HOME"); xdg.starts_with('/')) {
    candidates.emplace_back(xdg + "/rlock/config", "XDG_CONFIG_HOME");
  } else if (std::string home = env("HOME"); !home.empty()) {
    candidates.emplace_back(home + "/.config/rlock/config", "HOME");
  }
  if (!sources.system_file.empty()) candidates.emplace_back(sources.system_file, "");
  for (auto& [path, named_by] : candidates) {
    settings.files_tried.push_back(path);
    std::optional<LoadedFile> loaded = load_config_file(path, false);
    if (loaded) {
      settings.file = path;
      settings.file_source = named_by.empty() ? Source{} : Source{Origin::env, named_by};
      return loaded;
    }
  }
  return std::nullopt;
}

// The variable's value, or "" when it is unset. Set but empty is an error, never "unset": an
// empty RLOCK_URL would otherwise mean localhost, so that each host locks its own Redis.
std::string env_or_empty(const ConfigSources& sources, std::string_view name) {
  if (name.empty()) return {};
  const char* value = sources.getenv(std::string(name).c_str());
  if (value == nullptr) return {};
  if (*value == '\0') throw ConfigError(fmt::format("{} is set but empty: give it a value or unset it", name));
  return value;
}

// A password variable: empty counts as unset, as for redis-cli (a CI secret that is not
// defined expands to ""). Unlike an empty URL or prefix, it cannot point rlock elsewhere.
std::string password_env(const ConfigSources& sources, const char* name) {
  const char* value = sources.getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

} // namespace

std::string Source::describe() const {
  switch (origin) {
  case Origin::built_in: return detail.empty() ? "default" : detail;
  case Origin::foreign_env:
  case Origin::env: return "env " + detail;
  case Origin::file: return detail;
  case Origin::profile: return "profile " + detail;
  case Origin::url: return detail;
  case Origin::flag: return "flag " + detail;
  }
  return detail;
}

const Setting& Settings::get(std::string_view name) const {
  for (const Setting& setting : settings) {
    if (setting.spec->name == name) return setting;
  }
  throw Error(ExitCode::internal, fmt::format("no setting called '{}'", name));
}

void Settings::offer(std::string_view name, std::string value, Source source) {
  for (Setting& setting : settings) {
    if (setting.spec->name != name) continue;
    if (!value.empty() && (setting.value.empty() || source.origin >= setting.source.origin)) {
      setting.value = std::move(value);
      setting.source = std::move(source);
    }
    return;
  }
  throw Error(ExitCode::internal, fmt::format("no setting called '{}'", name));
}

Settings resolve_settings(const GlobalOptions& options, const ConfigSources& sources) {
  Settings settings;
  std::optional<LoadedFile> loaded = find_config_file(options, sources, settings);
  if (loaded) check_entries(*loaded);

  if (options.profile) {
    if (options.profile->empty()) throw UsageError("--profile needs a profile name");
    settings.profile = *options.profile;
    settings.profile_source = Source{Origin::flag, "--profile"};
  } else if (std::string profile = env_or_empty(sources, "RLOCK_PROFILE"); !profile.empty()) {
    settings.profile = profile;
    settings.profile_source = Source{Origin::env, "RLOCK_PROFILE"};
  }
  const ConfigSection* profile = nullptr;
  if (!settings.profile.empty()) {
    const std::string name = printable(settings.profile);
    if (!loaded) {
      std::string tried;
      for (const std::string& path : settings.files_tried) tried += (tried.empty() ? "" : ", ") + printable(path);
      throw ConfigError(fmt::format("profile '{}' ({}) needs a config file, and there is none ({}); write one or "
                                    "name it with --config",
                                    name, settings.profile_source.describe(), tried));
    }
    profile = loaded->config.profile(settings.profile);
    if (profile == nullptr) {
      const std::string names = loaded->config.profile_names();
      throw ConfigError(fmt::format(
          "profile '{}' ({}) is not in {}; {}", name, settings.profile_source.describe(), printable(settings.file),
          names.empty() ? "it has no [profile NAME] sections" : "its profiles are: " + names));
    }
  }

  for (const SettingSpec& spec : k_settings) {
    Setting setting{&spec, std::string(spec.built_in), Source{}};
    const auto take = [&setting](std::string value, Source source) {
      if (value.empty()) return;
      setting.value = std::move(value);
      setting.source = std::move(source);
    };
    take(env_or_empty(sources, spec.foreign_env), Source{Origin::foreign_env, std::string(spec.foreign_env)});
    if (loaded) {
      if (const ConfigEntry* entry = loaded->config.defaults().find(spec.name); entry != nullptr) {
        take(entry->value, Source{Origin::file, fmt::format("{}:{}", printable(settings.file), entry->line)});
      }
    }
    if (profile != nullptr) {
      if (const ConfigEntry* entry = profile->find(spec.name); entry != nullptr) {
        take(entry->value, Source{Origin::profile, fmt::format("{} {}:{}", printable(settings.profile),
                                                               printable(settings.file), entry->line)});
      }
    }
    take(env_or_empty(sources, spec.env), Source{Origin::env, std::string(spec.env)});
    if (spec.flag != nullptr) take(options.*spec.flag, Source{Origin::flag, fmt::format("--{}", spec.name)});
    if (spec.name == "tls-verify" && options.insecure) {
      if (!options.tls_verify.empty() && options.tls_verify != "none") {
        throw UsageError(fmt::format("--insecure contradicts --tls-verify {}", printable(options.tls_verify)));
      }
      take("none", Source{Origin::flag, "--insecure"});
    }
    settings.settings.push_back(std::move(setting));
  }
  return settings;
}

std::chrono::milliseconds node_timeout_for(std::chrono::milliseconds ttl) {
  return std::max(std::min(ttl / 100, std::chrono::milliseconds(1000)), std::chrono::milliseconds(20));
}

std::string read_secret_file(const std::string& path, const char* what) {
  std::string content = read_regular_file(path, what);
  auto newline = content.find_first_of("\r\n");
  if (newline != std::string::npos) content.resize(newline);
  if (content.empty()) throw ConfigError(fmt::format("{} {} is empty", what, printable(path)));
  return content;
}

namespace {

// A duration from the command line or the environment (a usage error when bad) or from the
// file (checked already).
std::chrono::milliseconds duration_of(const Setting& setting) {
  const std::string what =
      setting.source.origin == Origin::flag ? fmt::format("--{}", setting.spec->name) : setting.source.describe();
  std::chrono::milliseconds value = parse_duration(setting.value, what);
  if (value.count() <= 0) throw UsageError(fmt::format("{} must be greater than zero", what));
  return value;
}

// TLS settings (rlock(1), TLS): the URL's own query is over the environment, the profile and the
// file, and under a flag; settings.offer() puts it there. Only a TLS connection uses them: from
// the environment or the file they wait for a rediss:// URL, but given as a flag or in the
// URL's query for a plaintext one they are a mistake.
void resolve_tls(Config& config, const Setting& url) {
  redis::Endpoint& endpoint = config.connect.endpoint;
  Settings& settings = config.settings;
  redis::TlsSettings& tls = endpoint.tls;
  const Source from_url{Origin::url, fmt::format("the URL ({})", url.source.describe())};
  if (tls.enabled) settings.offer("tls", "yes", from_url);
  settings.offer("cacert", tls.cacert, from_url);
  settings.offer("cacertdir", tls.cacertdir, from_url);
  settings.offer("cert", tls.cert, from_url);
  settings.offer("key", tls.key, from_url);
  settings.offer("tls-server-name", tls.server_name, from_url);
  if (tls.verify != redis::TlsVerify::full) settings.offer("tls-verify", std::string(to_string(tls.verify)), from_url);

  const Setting& enabled = settings.get("tls");
  tls.enabled = !enabled.value.empty() && yes_no_value(enabled.value).value_or(false);
  if (!tls.enabled) {
    for (std::string_view name : k_tls_settings) {
      const Setting& setting = settings.get(name);
      if (setting.value.empty() || setting.source.origin == Origin::built_in) continue;
      if (setting.source.origin == Origin::url) {
        throw ConfigError(fmt::format("the URL {} sets TLS parameters but is not rediss://: use rediss:// or add "
                                      "--tls",
                                      endpoint.redacted()));
      }
      if (setting.source.origin == Origin::flag) {
        throw ConfigError(fmt::format("{} given for {}, which is not a TLS URL: use rediss:// or add --tls",
                                      setting.source.detail, endpoint.redacted()));
      }
      log::verbose("{} ({}) is not used: {} is not a TLS URL", name, setting.source.describe(), endpoint.redacted());
    }
    return;
  }
  if (endpoint.kind == redis::Endpoint::Kind::unix_socket) {
    throw ConfigError(fmt::format("TLS over a unix socket is not supported ({}): drop it, or use rediss://HOST:PORT",
                                  enabled.source.describe()));
  }
  tls.cacert = settings.value("cacert");
  tls.cacertdir = settings.value("cacertdir");
  tls.cert = settings.value("cert");
  tls.key = settings.value("key");
  tls.server_name = settings.value("tls-server-name");
  const Setting& verify = settings.get("tls-verify");
  tls.verify =
      verify.value.empty() ? redis::TlsVerify::full : tls_verify_value(verify.value).value_or(redis::TlsVerify::full);
  const Setting& session_cache = settings.get("tls-session-cache");
  const std::optional<bool> session_cache_on = yes_no_value(session_cache.value);
  if (!session_cache_on) {
    throw ConfigError(fmt::format("{} must be yes or no (or 1 or 0), not '{}'", session_cache.source.describe(),
                                  printable(session_cache.value)));
  }
  tls.session_cache = *session_cache_on;
  switch (tls.verify) {
  case redis::TlsVerify::full: break;
  case redis::TlsVerify::ca:
    log::warn("TLS: the server's certificate chain is verified but not its name (verify=ca, {}): any certificate "
              "that CA signed is accepted for {}",
              verify.source.describe(), endpoint.host);
    break;
  case redis::TlsVerify::none:
    log::warn("TLS: the server's certificate is not verified (verify=none, {}): anyone between rlock and {} can "
              "read and change the traffic, passwords included",
              verify.source.describe(), endpoint.host);
    break;
  }
}

} // namespace

Config resolve_config(const GlobalOptions& options, const ConfigSources& sources) {
  Config config;
  config.settings = resolve_settings(options, sources);
  const Settings& settings = config.settings;
  if (!settings.file.empty()) {
    log::verbose("config file {}{}", printable(settings.file),
                 settings.profile.empty() ? std::string() : fmt::format(", profile {}", printable(settings.profile)));
  }

  const Setting& url = settings.get("url");
  const bool shared_url = url.source.origin == Origin::foreign_env; // REDIS_URL, read by other programs too
  std::vector<std::string> ignored;
  const std::vector<std::string> urls = split_urls(url.value);
  std::vector<redis::Endpoint> nodes;
  if (urls.size() > 1) {
    if (urls.size() == 2) {
      throw ConfigError(fmt::format("2 URLs given ({}): a quorum of independent masters needs at least 3 (a majority "
                                    "of 2 is both, so either one failing stops every lock); give one URL, or 3 or "
                                    "more",
                                    url.source.describe()));
    }
    for (const std::string& one : urls) {
      redis::Endpoint endpoint =
          redis::parse_url(one, shared_url ? redis::UrlOrigin::shared : redis::UrlOrigin::own, &ignored);
      if (endpoint.routing != redis::Routing::single) {
        throw ConfigError(fmt::format("{} is a {} URL: each node of a quorum must be one server (redis://, rediss:// "
                                      "or unix://)",
                                      endpoint.redacted(),
                                      endpoint.routing == redis::Routing::sentinel ? "Sentinel" : "Cluster"));
      }
      nodes.push_back(std::move(endpoint));
    }
    if (nodes.size() % 2 == 0) {
      log::warn("{} nodes: a quorum needs {} of them, so it survives no more failures than {} nodes would; an odd "
                "number is recommended",
                nodes.size(), nodes.size() / 2 + 1, nodes.size() - 1);
    }
    config.connect.endpoint = nodes.front();
  } else {
    config.connect.endpoint =
        redis::parse_url(url.value, shared_url ? redis::UrlOrigin::shared : redis::UrlOrigin::own, &ignored);
  }
  config.shown_url = config.connect.endpoint.redacted();
  for (const auto& key : ignored) log::verbose("REDIS_URL: ignoring '{}', a setting of another client", key);
  resolve_tls(config, url);

  // The password: the first found of --password, --password-file, the URL's own, RLOCK_PASSWORD,
  // RLOCK_PASSWORD_FILE or else the config file's password-file, REDISCLI_AUTH.
  const Setting& password_file = settings.get("password-file");
  auto& password = config.connect.endpoint.password;
  const std::string rlock_password = password_env(sources, "RLOCK_PASSWORD");
  const auto read_password_file = [&] {
    password = read_secret_file(password_file.value, password_file.source.origin == Origin::env
                                                         ? "password file (RLOCK_PASSWORD_FILE)"
                                                         : "password file");
    config.password_file = password_file.value;
    config.password_from =
        fmt::format("password-file {} ({})", printable(password_file.value), password_file.source.describe());
  };
  const bool file_given_as_flag = password_file.source.origin == Origin::flag;
  if (!options.password.empty()) {
    log::warn("using a password on the command line is not safe: other users can see it in ps; "
              "use RLOCK_PASSWORD or --password-file");
    password = options.password;
    config.password_from = "flag --password";
  } else if (!password_file.value.empty() && file_given_as_flag) { // NOLINT(bugprone-branch-clone): ranks apart
    read_password_file();
  } else if (password) {
    config.password_from = fmt::format("the URL ({})", url.source.describe());
  } else if (!rlock_password.empty()) {
    password = rlock_password;
    config.password_from = "env RLOCK_PASSWORD";
  } else if (!password_file.value.empty()) {
    read_password_file();
  } else if (std::string rediscli = password_env(sources, "REDISCLI_AUTH"); !rediscli.empty()) {
    password = rediscli;
    config.password_from = "env REDISCLI_AUTH";
  }

  // The sentinels' password: --sentinel-password-file, RLOCK_SENTINEL_PASSWORD, then the
  // config file's sentinel-password-file. The master's never goes to the sentinels.
  const Setting& sentinel_file = settings.get("sentinel-password-file");
  if (config.connect.endpoint.routing == redis::Routing::sentinel) {
    std::string from_env = password_env(sources, "RLOCK_SENTINEL_PASSWORD");
    if (!sentinel_file.value.empty() && (sentinel_file.source.origin == Origin::flag || from_env.empty())) {
      config.connect.endpoint.sentinel_password = read_secret_file(sentinel_file.value, "sentinel password file");
    } else if (!from_env.empty()) {
      config.connect.endpoint.sentinel_password = from_env;
    }
  } else if (!sentinel_file.value.empty()) {
    log::verbose("sentinel-password-file ({}) is not used: {} is not a Sentinel URL", sentinel_file.source.describe(),
                 config.connect.endpoint.redacted());
  }

  config.prefix = settings.value("prefix");
  if (std::string problem = prefix_problem(config.prefix); !problem.empty()) throw UsageError(problem);

  config.connect.connect_timeout = duration_of(settings.get("connect-timeout"));
  config.connect.io_timeout = duration_of(settings.get("io-timeout"));
  config.ttl = duration_of(settings.get("ttl"));
  config.min_replicas = parse_min_replicas(settings.value("min-replicas"), "min-replicas");
  if (const Setting& timeout = settings.get("min-replicas-timeout"); !timeout.value.empty()) {
    config.min_replicas_timeout = duration_of(timeout);
  }

  if (const Setting& timeout = settings.get("node-timeout"); !timeout.value.empty()) {
    config.node_timeout = duration_of(timeout);
  }
  const Setting& audit = settings.get("audit");
  const std::optional<bool> audit_on = yes_no_value(audit.value);
  if (!audit_on) {
    throw ConfigError(
        fmt::format("{} must be yes or no (or 1 or 0), not '{}'", audit.source.describe(), printable(audit.value)));
  }
  config.audit = *audit_on;

  redis::Endpoint without_password = config.connect.endpoint;
  without_password.password.reset();
  config.job_url = without_password.url();
  if (!nodes.empty()) {
    // Every node: its own URL, with what the flags, the environment and the file resolved for
    // the first (timeouts, TLS files, the password) where its URL does not say.
    std::string shown;
    std::string job;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      redis::ConnectOptions node = config.connect;
      if (i > 0) {
        node.endpoint = nodes[i];
        redis::TlsSettings& tls = node.endpoint.tls;
        const redis::TlsSettings& shared = config.connect.endpoint.tls;
        tls.enabled = tls.enabled || shared.enabled;
        if (tls.cacert.empty() && tls.cacertdir.empty()) {
          tls.cacert = shared.cacert;
          tls.cacertdir = shared.cacertdir;
        }
        if (tls.cert.empty()) {
          tls.cert = shared.cert;
          tls.key = shared.key;
        }
        if (shared.verify != redis::TlsVerify::full && tls.verify == redis::TlsVerify::full) tls.verify = shared.verify;
        tls.session_cache = shared.session_cache;
        if (!node.endpoint.password) node.endpoint.password = config.connect.endpoint.password;
      }
      shown += (shown.empty() ? "" : " ") + node.endpoint.redacted();
      redis::Endpoint bare = node.endpoint;
      bare.password.reset();
      job += (job.empty() ? "" : " ") + bare.url();
      config.quorum.push_back(std::move(node));
    }
    config.shown_url = shown;
    config.job_url = job;
  }
  return config;
}

} // namespace rlock::cli
