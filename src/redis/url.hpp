// SPDX-License-Identifier: MIT
// Endpoint: where Redis is and how to log in, parsed from redis://, rediss:// and unix:// URLs.
#pragma once

#include "redis/tls.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::redis {

struct HostPort {
  std::string host;
  int port = 0;
};

// How a lock name finds its server: the one server the URL names, the master a set of
// sentinels names (redis+sentinel://), or the cluster node of the name's slot (redis+cluster://).
enum class Routing { single, sentinel, cluster };

struct Endpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  Routing routing = Routing::single;
  TlsSettings tls; // tls.enabled for rediss:// (or --tls); the host below is the name verified
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path; // unix socket path
  int db = 0;
  std::string user; // empty: the default user
  std::optional<std::string> password;
  // Sentinel and Cluster: every host of the URL (host and port above are the first). For
  // Sentinel these are the sentinels, and the fields below say how to reach them.
  std::vector<HostPort> seeds;
  std::string master_name;                      // the name the sentinels monitor the master by
  std::string sentinel_user;                    // ?sentinel_user=; empty: the default user
  std::optional<std::string> sentinel_password; // RLOCK_SENTINEL_PASSWORD or --sentinel-password-file
  bool sentinel_tls = false;                    // TLS to the sentinels (rediss+sentinel:// unless ?sentinel_tls=no)

  // The URL with any password replaced by "***", safe for messages and -v output.
  std::string redacted() const;
  // The URL, password included if there is one: what parse_url reads back as this endpoint.
  std::string url() const;
};

// Where a URL came from. `own`: --url or RLOCK_URL, written for rlock, so every query key must
// be one rlock knows. `shared`: REDIS_URL, which other programs read too: their tuning keys
// (timeouts, pool sizes) are skipped, but never one that looks like a TLS setting.
enum class UrlOrigin { own, shared };

// Parses redis://[user[:password]@]host[:port][/db][?query], rediss://…, unix:///path[?db=N],
// redis+sentinel://[user[:password]@]h1[:p1][,h2[:p2]…]/MASTER[/db][?query] (rediss+sentinel://,
// and Lettuce's redis-sentinel://h1[:p1][,…][/db]?sentinelMasterId=MASTER; sentinels default to
// port 26379; query keys sentinel_user and sentinel_tls=yes|no) and
// redis+cluster://[user[:password]@]h1[:p1][,h2[:p2]…][?query] (rediss+cluster://; no /db). Query keys (TLS in
// rlock(1)): db, cacert, cacertdir, cert, key, server_name, verify=full|ca|none, and the spellings of redis-py
// (ssl_ca_certs, ssl_ca_path, ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname), go-redis (skip_verify) and
// Lettuce (verifyPeer); when several weaken verification, the weakest wins. Keys skipped from a shared URL are appended
// to `ignored`. Throws ConfigError (exit 78) saying what is wrong.
Endpoint parse_url(std::string_view url, UrlOrigin origin = UrlOrigin::own,
                   std::vector<std::string>* ignored = nullptr);

// Whether the endpoint carries TLS settings beyond the default (files, a name, a weaker verify).
bool has_tls_settings(const TlsSettings& tls) noexcept;

} // namespace rlock::redis
