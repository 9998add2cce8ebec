// SPDX-License-Identifier: MIT
// URL parsing for Redis endpoints.
#include "redis/url.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <array>
#include <cctype>
#include <fmt/format.h>
#include <utility>

namespace rlock::redis {

namespace {

ConfigError bad_url(std::string_view why) {
  return ConfigError(fmt::format("invalid Redis URL: {} (expected redis://[user[:password]@]"
                                 "host[:port][/db], rediss://…, unix:///path.sock[?db=N], "
                                 "redis+sentinel://HOST[:PORT][,…]/MASTER or redis+cluster://HOST[:PORT][,…])",
                                 why));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) throw bad_url("truncated %-escape");
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) throw bad_url("bad %-escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

int parse_db(std::string_view text) {
  std::int64_t db = 0;
  if (!parse_int(text, db) || db < 0 || db > 1'000'000) {
    throw bad_url(fmt::format("database '{}' is not a non-negative number", printable(text)));
  }
  return static_cast<int>(db);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string value = lower(text);
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  return std::nullopt;
}

ConfigError bad_value(std::string_view key, std::string_view value, std::string_view expected) {
  return bad_url(fmt::format("'{}={}': expected {}", printable(key), printable(value), expected));
}

// Whether an unknown query key may be a TLS setting of some client, which must never be
// dropped silently: skipping it could turn verification off or lose the CA it names.
bool looks_like_tls_key(std::string_view key) {
  std::string name = lower(key);
  for (std::string_view part : {"ssl", "tls", "cert", "ca_", "cafile", "capath", "verify", "sni", "servername",
                                "server_name", "insecure", "key", "peer", "trust"}) {
    if (name.find(part) != std::string::npos) return true;
  }
  return name == "ca";
}

TlsVerify weaker(std::optional<TlsVerify> current, TlsVerify next) {
  if (!current) return next;
  return static_cast<int>(next) > static_cast<int>(*current) ? next : *current;
}

// Reads the query of a redis:// or rediss:// URL into `endpoint`.
void parse_tcp_query(std::string_view params, Endpoint& endpoint, UrlOrigin origin, std::vector<std::string>* ignored) {
  std::optional<TlsVerify> verify;
  while (!params.empty()) {
    auto amp = params.find('&');
    std::string_view param = params.substr(0, amp);
    params = amp == std::string_view::npos ? std::string_view{} : params.substr(amp + 1);
    if (param.empty()) continue;
    auto eq = param.find('=');
    std::string_view key = param.substr(0, eq);
    std::string value = eq == std::string_view::npos ? std::string() : percent_decode(param.substr(eq + 1));
    auto file_value = [&](std::string& field) {
      if (value.empty()) throw bad_url(fmt::format("'{}' needs a path", printable(key)));
      field = value;
    };
    if (key == "db") {
      endpoint.db = parse_db(value);
    } else if (key == "cacert" || key == "ssl_ca_certs") {
      file_value(endpoint.tls.cacert);
    } else if (key == "cacertdir" || key == "ssl_ca_path") {
      file_value(endpoint.tls.cacertdir);
    } else if (key == "cert" || key == "ssl_certfile") {
      file_value(endpoint.tls.cert);
    } else if (key == "key" || key == "ssl_keyfile") {
      file_value(endpoint.tls.key);
    } else if (key == "server_name") {
      if (value.empty()) throw bad_url("'server_name' needs a host name");
      endpoint.tls.server_name = value;
    } else if (key == "verify") {
      std::string mode = lower(value);
      if (mode == "full") {
        verify = weaker(verify, TlsVerify::full);
      } else if (mode == "ca") {
        verify = weaker(verify, TlsVerify::ca);
      } else if (mode == "none") {
        verify = weaker(verify, TlsVerify::none);
      } else {
        throw bad_value(key, value, "full, ca or none");
      }
    } else if (key == "ssl_cert_reqs") {
      std::string mode = lower(value);
      if (mode == "none" || mode == "cert_none") {
        verify = weaker(verify, TlsVerify::none);
      } else if (mode == "optional" || mode == "required" || mode == "cert_optional" || mode == "cert_required") {
        verify = weaker(verify, TlsVerify::full);
      } else {
        throw bad_value(key, value, "none, optional or required");
      }
    } else if (key == "ssl_check_hostname") {
      auto check = parse_bool(value);
      if (!check) throw bad_value(key, value, "true or false");
      verify = weaker(verify, *check ? TlsVerify::full : TlsVerify::ca);
    } else if (key == "skip_verify") {
      auto skip = parse_bool(value);
      if (!skip) throw bad_value(key, value, "true or false");
      verify = weaker(verify, *skip ? TlsVerify::none : TlsVerify::full);
    } else if (key == "verifyPeer") {
      std::string mode = lower(value);
      if (mode == "full" || mode == "true") {
        verify = weaker(verify, TlsVerify::full);
      } else if (mode == "ca") {
        verify = weaker(verify, TlsVerify::ca);
      } else if (mode == "none" || mode == "false") {
        verify = weaker(verify, TlsVerify::none);
      } else {
        throw bad_value(key, value, "NONE, CA or FULL");
      }
    } else if (endpoint.routing == Routing::sentinel && key == "sentinel_user") {
      endpoint.sentinel_user = value;
    } else if (endpoint.routing == Routing::sentinel && key == "sentinel_tls") {
      auto tls = parse_bool(value);
      if (!tls) throw bad_value(key, value, "yes or no");
      endpoint.sentinel_tls = *tls;
    } else if (endpoint.routing == Routing::sentinel && key == "sentinelMasterId") {
      if (value.empty()) throw bad_url("'sentinelMasterId' needs the master's name");
      endpoint.master_name = value;
    } else if (origin == UrlOrigin::shared && !looks_like_tls_key(key)) {
      if (ignored != nullptr) ignored->emplace_back(printable(key));
    } else {
      throw bad_url(fmt::format("unknown parameter '{}' (rlock knows db, cacert, cacertdir, cert, key, "
                                "server_name, verify and the ssl_* spellings of redis-py{})",
                                printable(key),
                                endpoint.routing == Routing::sentinel ? "; and sentinel_user, sentinel_tls, "
                                                                        "sentinelMasterId for Sentinel"
                                                                      : ""));
    }
  }
  if (verify) endpoint.tls.verify = *verify;
}

struct Scheme {
  std::string_view prefix;
  bool tls;
  Routing routing;
  bool lettuce; // redis-sentinel://: the path is the database, the master a query key
};

constexpr std::array<Scheme, 8> k_schemes{{
    {"redis://", false, Routing::single, false},
    {"rediss://", true, Routing::single, false},
    {"redis+sentinel://", false, Routing::sentinel, false},
    {"rediss+sentinel://", true, Routing::sentinel, false},
    {"redis-sentinel://", false, Routing::sentinel, true},
    {"rediss-sentinel://", true, Routing::sentinel, true},
    {"redis+cluster://", false, Routing::cluster, false},
    {"rediss+cluster://", true, Routing::cluster, false},
}};

// "host[:port]" or "[v6]:port", the port `default_port` when not given.
HostPort parse_host_port(std::string_view hostport, int default_port) {
  HostPort out{.host = {}, .port = default_port};
  std::string_view port_text;
  if (hostport.starts_with('[')) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) throw bad_url("unterminated [IPv6] host");
    out.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw bad_url("junk after [IPv6] host");
      port_text = after.substr(1);
    }
  } else {
    auto colon = hostport.rfind(':');
    out.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) port_text = hostport.substr(colon + 1);
  }
  if (out.host.empty()) throw bad_url("no host");
  for (char c : out.host) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '/' || c == '?' || c == '#' || c == ',') {
      throw bad_url(fmt::format("bad host '{}'", printable(out.host)));
    }
  }
  if (!port_text.empty() || (!hostport.empty() && hostport.back() == ':')) {
    std::int64_t port = 0;
    if (!parse_int(port_text, port) || port < 1 || port > 65535) {
      throw bad_url(fmt::format("port '{}' is not a number from 1 to 65535", printable(port_text)));
    }
    out.port = static_cast<int>(port);
  }
  return out;
}

// The path after the hosts ("" or "/…"): the database, or for Sentinel /MASTER[/db].
void parse_path(std::string_view path, const Scheme& scheme, Endpoint& endpoint) {
  if (path.starts_with('/')) path.remove_prefix(1);
  if (scheme.routing == Routing::sentinel && !scheme.lettuce) {
    std::string_view master = path.substr(0, path.find('/'));
    path = path.substr(master.size());
    if (path.starts_with('/')) path.remove_prefix(1);
    if (!master.empty()) endpoint.master_name = percent_decode(master);
  }
  if (!path.empty()) endpoint.db = parse_db(path);
}

} // namespace

bool has_tls_settings(const TlsSettings& tls) noexcept {
  return !tls.cacert.empty() || !tls.cacertdir.empty() || !tls.cert.empty() || !tls.key.empty() ||
         !tls.server_name.empty() || tls.verify != TlsVerify::full;
}

Endpoint parse_url(std::string_view url, UrlOrigin origin, std::vector<std::string>* ignored) {
  Endpoint endpoint;
  if (url.starts_with("unix://")) {
    endpoint.kind = Endpoint::Kind::unix_socket;
    std::string_view rest = url.substr(7);
    auto query = rest.find('?');
    endpoint.path = std::string(rest.substr(0, query));
    if (endpoint.path.empty() || endpoint.path[0] != '/') {
      throw bad_url("a unix socket URL needs an absolute path, as in unix:///run/redis.sock");
    }
    if (query != std::string_view::npos) {
      std::string_view params = rest.substr(query + 1);
      while (!params.empty()) {
        auto amp = params.find('&');
        std::string_view param = params.substr(0, amp);
        if (param.starts_with("db=")) {
          endpoint.db = parse_db(param.substr(3));
        } else if (param.starts_with("password=")) {
          endpoint.password = percent_decode(param.substr(9));
        } else if (param.starts_with("user=")) {
          endpoint.user = percent_decode(param.substr(5));
        } else {
          throw bad_url(fmt::format("unknown parameter '{}'", printable(param.substr(0, param.find('=')))));
        }
        params = amp == std::string_view::npos ? std::string_view{} : params.substr(amp + 1);
      }
    }
    return endpoint;
  }
  const Scheme* scheme = nullptr;
  for (const Scheme& known : k_schemes) {
    if (url.starts_with(known.prefix)) scheme = &known;
  }
  if (scheme == nullptr) {
    auto scheme_end = url.find("://");
    // The URL itself is not echoed: without a scheme we cannot tell where a password sits.
    if (scheme_end == std::string_view::npos) throw bad_url("no scheme such as redis://");
    throw bad_url(fmt::format("unsupported scheme '{}'", printable(url.substr(0, scheme_end))));
  }
  std::string_view rest = url.substr(scheme->prefix.size());
  endpoint.tls.enabled = scheme->tls;
  endpoint.routing = scheme->routing;
  endpoint.sentinel_tls = scheme->tls;
  const int default_port = scheme->routing == Routing::sentinel ? 26379 : 6379;

  // The query starts at the first '?' after the last '@': a password may hold a raw '?', a
  // query value an '@' only as %40.
  auto at = rest.rfind('@');
  auto question = rest.find('?', at == std::string_view::npos ? 0 : at + 1);
  if (question != std::string_view::npos) {
    std::string_view query = rest.substr(question + 1);
    rest = rest.substr(0, question);
    at = rest.rfind('@');
    parse_tcp_query(query, endpoint, origin, ignored);
  }
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // redis://secret@host is how redis-cli reads a bare password.
      endpoint.password = percent_decode(userinfo);
    } else {
      endpoint.user = percent_decode(userinfo.substr(0, colon));
      // redis://user:@host names the user and leaves the password to the environment.
      if (colon + 1 < userinfo.size()) endpoint.password = percent_decode(userinfo.substr(colon + 1));
    }
  }
  auto slash = rest.find('/');
  std::string_view hosts = rest.substr(0, slash);
  std::string from_query = std::exchange(endpoint.master_name, {}); // sentinelMasterId
  parse_path(slash == std::string_view::npos ? std::string_view{} : rest.substr(slash), *scheme, endpoint);
  if (!from_query.empty()) {
    if (!endpoint.master_name.empty() && endpoint.master_name != from_query) {
      throw bad_url(fmt::format("the path names master '{}', sentinelMasterId '{}'", printable(endpoint.master_name),
                                printable(from_query)));
    }
    endpoint.master_name = from_query;
  }
  while (true) {
    auto comma = hosts.find(',');
    endpoint.seeds.push_back(parse_host_port(hosts.substr(0, comma), default_port));
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
  }
  endpoint.host = endpoint.seeds.front().host;
  endpoint.port = endpoint.seeds.front().port;
  switch (endpoint.routing) {
  case Routing::single:
    if (endpoint.seeds.size() > 1) {
      throw bad_url("several hosts need redis+sentinel:// (the sentinels) or redis+cluster:// (cluster seeds)");
    }
    endpoint.seeds.clear();
    break;
  case Routing::sentinel:
    if (endpoint.master_name.empty()) {
      throw bad_url(scheme->lettuce ? "a redis-sentinel:// URL names the master with ?sentinelMasterId=NAME"
                                    : "a Sentinel URL names the master: redis+sentinel://HOST[:PORT][,…]/MASTER");
    }
    break;
  case Routing::cluster:
    if (endpoint.db != 0) throw bad_url("a cluster has only database 0");
    break;
  }
  return endpoint;
}

namespace {

// `keep`: further characters left as they are ('/' in a query's paths).
std::string percent_encode(std::string_view text, std::string_view keep = {}) {
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

// The URL with the password rendered as `shown_password`.
std::string render(const Endpoint& endpoint, std::string_view shown_password) {
  std::string auth;
  if (!endpoint.user.empty() || endpoint.password) {
    auth = percent_encode(endpoint.user);
    if (endpoint.password) {
      auth += endpoint.user.empty() ? "" : ":";
      auth += shown_password;
    } else {
      auth += ':'; // user only: "user:@host", or it would read back as a password
    }
    auth += '@';
  }
  if (endpoint.kind == Endpoint::Kind::unix_socket) {
    std::string query;
    if (endpoint.db != 0) query += fmt::format("db={}", endpoint.db);
    if (!endpoint.user.empty())
      query += fmt::format("{}user={}", query.empty() ? "" : "&", percent_encode(endpoint.user));
    if (endpoint.password) query += fmt::format("{}password={}", query.empty() ? "" : "&", shown_password);
    return query.empty() ? fmt::format("unix://{}", endpoint.path) : fmt::format("unix://{}?{}", endpoint.path, query);
  }
  auto host_text = [](const std::string& host, int port) {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
  };
  std::string hosts = host_text(endpoint.host, endpoint.port);
  for (std::size_t i = 1; i < endpoint.seeds.size(); ++i) {
    hosts += "," + host_text(endpoint.seeds[i].host, endpoint.seeds[i].port);
  }
  std::string_view routing;
  if (endpoint.routing == Routing::sentinel) routing = "+sentinel";
  if (endpoint.routing == Routing::cluster) routing = "+cluster";
  std::string out = fmt::format("{}{}://{}{}", endpoint.tls.enabled ? "rediss" : "redis", routing, auth, hosts);
  if (endpoint.routing == Routing::sentinel) out += "/" + percent_encode(endpoint.master_name);
  if (endpoint.db != 0) out += fmt::format("/{}", endpoint.db);
  std::string query;
  auto add = [&query](std::string_view key, const std::string& value) {
    if (value.empty()) return;
    query += fmt::format("{}{}={}", query.empty() ? "?" : "&", key, percent_encode(value, "/"));
  };
  if (endpoint.routing == Routing::sentinel) {
    add("sentinel_user", endpoint.sentinel_user);
    if (endpoint.sentinel_tls != endpoint.tls.enabled) add("sentinel_tls", endpoint.sentinel_tls ? "yes" : "no");
  }
  add("cacert", endpoint.tls.cacert);
  add("cacertdir", endpoint.tls.cacertdir);
  add("cert", endpoint.tls.cert);
  add("key", endpoint.tls.key);
  add("server_name", endpoint.tls.server_name);
  if (endpoint.tls.verify != TlsVerify::full) add("verify", std::string(to_string(endpoint.tls.verify)));
  return out + query;
}

} // namespace

std::string Endpoint::url() const { return render(*this, password ? percent_encode(*password) : std::string()); }

std::string Endpoint::redacted() const { return render(*this, "***"); }

} // namespace rlock::redis
