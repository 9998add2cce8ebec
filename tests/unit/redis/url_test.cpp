// SPDX-License-Identifier: MIT
// Tests for parsing Redis URLs into endpoints and redacting them (redis/url).
#include "redis/url.hpp"

#include "util/error.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <string>
#include <vector>

using rlock::ConfigError;
using rlock::redis::Endpoint;
using rlock::redis::parse_url;
using rlock::redis::system_trust_store_candidates;
using rlock::redis::TlsVerify;
using rlock::redis::UrlOrigin;

namespace {

// Parses `url` expecting a ConfigError (exit 78); returns its message.
std::string config_error_of(std::string_view url) {
  try {
    Endpoint endpoint = parse_url(url);
    FAIL_CHECK("'" << std::string(url) << "' parsed as " << endpoint.redacted());
  } catch (const rlock::ConfigError& error) {
    CHECK(rlock::to_int(error.code()) == 78);
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("parse_url: redis://host with defaults") {
  Endpoint endpoint = parse_url("redis://cache.example.com");
  CHECK(endpoint.kind == Endpoint::Kind::tcp);
  CHECK_FALSE(endpoint.tls.enabled);
  CHECK(endpoint.host == "cache.example.com");
  CHECK(endpoint.port == 6379);
  CHECK(endpoint.db == 0);
  CHECK(endpoint.user.empty());
  CHECK_FALSE(endpoint.password.has_value());
}

TEST_CASE("parse_url: port and database") {
  Endpoint with_port = parse_url("redis://10.0.0.5:6380");
  CHECK(with_port.host == "10.0.0.5");
  CHECK(with_port.port == 6380);
  CHECK(with_port.db == 0);

  Endpoint with_db = parse_url("redis://localhost/3");
  CHECK(with_db.host == "localhost");
  CHECK(with_db.port == 6379);
  CHECK(with_db.db == 3);

  Endpoint both = parse_url("redis://localhost:1/15");
  CHECK(both.port == 1);
  CHECK(both.db == 15);

  CHECK(parse_url("redis://localhost:65535").port == 65535);
  CHECK(parse_url("redis://localhost/").db == 0);
  CHECK(parse_url("redis://localhost:7000/").port == 7000);
}

TEST_CASE("parse_url: user and password") {
  Endpoint acl = parse_url("redis://alice:s3cret@redis.local:6380/2");
  CHECK(acl.user == "alice");
  REQUIRE(acl.password.has_value());
  CHECK(*acl.password == "s3cret");
  CHECK(acl.host == "redis.local");
  CHECK(acl.port == 6380);
  CHECK(acl.db == 2);

  // redis-cli reads a bare userinfo as the password.
  Endpoint password_only = parse_url("redis://s3cret@redis.local");
  CHECK(password_only.user.empty());
  REQUIRE(password_only.password.has_value());
  CHECK(*password_only.password == "s3cret");
  CHECK(password_only.host == "redis.local");

  Endpoint empty_user = parse_url("redis://:s3cret@redis.local");
  CHECK(empty_user.user.empty());
  REQUIRE(empty_user.password.has_value());
  CHECK(*empty_user.password == "s3cret");

  // The last '@' ends the userinfo, so an unescaped '@' in a password still works.
  Endpoint at_in_password = parse_url("redis://bob:p@ss@redis.local");
  CHECK(at_in_password.user == "bob");
  CHECK(at_in_password.password.value_or("") == "p@ss");
  CHECK(at_in_password.host == "redis.local");
}

TEST_CASE("parse_url: %-escapes in user and password") {
  Endpoint endpoint = parse_url("redis://al%69ce:p%40ss%3Aw%2Fo%25rd%2f@h");
  CHECK(endpoint.user == "alice");
  CHECK(endpoint.password.value_or("") == "p@ss:w/o%rd/");
  CHECK(endpoint.host == "h");
  CHECK(parse_url("redis://%41%62@h").password.value_or("") == "Ab");
}

TEST_CASE("parse_url: bracketed IPv6 hosts") {
  Endpoint with_port = parse_url("redis://[::1]:6380");
  CHECK(with_port.host == "::1");
  CHECK(with_port.port == 6380);

  Endpoint default_port = parse_url("redis://[fe80::1%25eth0]/4");
  CHECK(default_port.port == 6379);
  CHECK(default_port.db == 4);

  Endpoint plain = parse_url("redis://u:p@[2001:db8::7]");
  CHECK(plain.host == "2001:db8::7");
  CHECK(plain.user == "u");
}

TEST_CASE("parse_url: rediss:// sets the TLS flag") {
  Endpoint endpoint = parse_url("rediss://secure.example.com:6380/1");
  CHECK(endpoint.tls.enabled);
  CHECK(endpoint.kind == Endpoint::Kind::tcp);
  CHECK(endpoint.host == "secure.example.com");
  CHECK(endpoint.port == 6380);
  CHECK(endpoint.db == 1);
  CHECK_FALSE(parse_url("redis://secure.example.com").tls.enabled);
}

TEST_CASE("parse_url: unix sockets") {
  Endpoint plain = parse_url("unix:///run/redis/redis.sock");
  CHECK(plain.kind == Endpoint::Kind::unix_socket);
  CHECK(plain.path == "/run/redis/redis.sock");
  CHECK(plain.db == 0);
  CHECK_FALSE(plain.tls.enabled);
  CHECK_FALSE(plain.password.has_value());

  Endpoint with_db = parse_url("unix:///tmp/r.sock?db=3");
  CHECK(with_db.path == "/tmp/r.sock");
  CHECK(with_db.db == 3);

  Endpoint with_auth = parse_url("unix:///tmp/r.sock?user=bob&password=p%40ss&db=2");
  CHECK(with_auth.user == "bob");
  CHECK(with_auth.password.value_or("") == "p@ss");
  CHECK(with_auth.db == 2);
}

TEST_CASE("parse_url: malformed URLs are ConfigErrors") {
  for (const char* bad : {
           "",
           "localhost",
           "localhost:6379",
           "http://localhost",
           "tcp://localhost:6379",
           "redis:/localhost",
           "redis://",
           "redis://:6379",
           "redis://u:p@",
           "redis://u:p@:6379",
           "redis:///0",
           "redis://localhost:0",
           "redis://localhost:65536",
           "redis://localhost:abc",
           "redis://localhost:",
           "redis://localhost:-1",
           "redis://localhost:+80",
           "redis://localhost:80x",
           "redis://localhost/-1",
           "redis://localhost/abc",
           "redis://localhost/1/2",
           "redis://localhost/0?timeout=1",
           "redis://local host",
           "redis://[::1",
           "redis://[::1]x",
           "redis://[::1]:",
           "redis://[]:6379",
           "unix://",
           "unix://relative.sock",
           "unix://run/redis.sock",
           "unix:///tmp/r.sock?db=-1",
           "unix:///tmp/r.sock?db=abc",
           "unix:///tmp/r.sock?timeout=5",
           "unix:///tmp/r.sock?password=%4",
           "redis://u:p%@h",
           "redis://u:p%4@h",
           "redis://u:%4@h",
           "redis://u:p%zz@h",
           "redis://u:p%g1@h",
       }) {
    CAPTURE(bad);
    config_error_of(bad);
  }
}

TEST_CASE("parse_url: errors say what is wrong") {
  CHECK(config_error_of("http://localhost").find("http") != std::string::npos);
  CHECK(config_error_of("redis://localhost:99999").find("99999") != std::string::npos);
  CHECK(config_error_of("redis://localhost/abc").find("abc") != std::string::npos);
  CHECK(config_error_of("redis://u:p%4@h").find("%-escape") != std::string::npos);
  CHECK(config_error_of("unix://x.sock").find("absolute") != std::string::npos);
  CHECK(config_error_of("unix:///x.sock?tls=1").find("tls") != std::string::npos);
}

TEST_CASE("parse_url: errors never echo a password") {
  // A forgotten scheme or a misspelt parameter must not put the secret on stderr (or in CI logs).
  CHECK(config_error_of("alice:hunter2@redis.local:6379").find("hunter2") == std::string::npos);
  CHECK(config_error_of("unix:///tmp/r.sock?pasword=hunter2").find("hunter2") == std::string::npos);
  CHECK(config_error_of("redis://alice:hunter2@redis.local:abc").find("hunter2") == std::string::npos);
  CHECK(config_error_of("redis://alice:hunter2@redis.local/x").find("hunter2") == std::string::npos);
  CHECK(config_error_of("redis://alice:hunter2@").find("hunter2") == std::string::npos);
  CHECK(config_error_of("http://alice:hunter2@redis.local").find("hunter2") == std::string::npos);
}

TEST_CASE("Endpoint::url reads back as the same endpoint, password included") {
  for (const char* url : {"redis://alice:hun%3Ater2@redis.local:6380/2", "redis://hunter2@h", "redis://bob:@h",
                          "rediss://[::1]:7000", "unix:///s.sock?user=u&password=p%26w&db=1", "unix:///s.sock"}) {
    CAPTURE(url);
    Endpoint first = parse_url(url);
    Endpoint again = parse_url(first.url());
    CHECK(again.host == first.host);
    CHECK(again.port == first.port);
    CHECK(again.db == first.db);
    CHECK(again.user == first.user);
    CHECK(again.password == first.password);
    CHECK(again.path == first.path);
    CHECK(again.tls.enabled == first.tls.enabled);
  }
  Endpoint without = parse_url("redis://alice:secret@h");
  without.password.reset();
  CHECK(without.url() == "redis://alice:@h:6379");
}

TEST_CASE("Endpoint::redacted hides the password and keeps the rest") {
  CHECK(parse_url("redis://alice:hunter2@redis.local:6380/2").redacted() == "redis://alice:***@redis.local:6380/2");
  CHECK(parse_url("redis://hunter2@redis.local").redacted() == "redis://***@redis.local:6379");
  CHECK(parse_url("rediss://redis.local").redacted() == "rediss://redis.local:6379");
  CHECK(parse_url("redis://[::1]:6380").redacted() == "redis://[::1]:6380");
  CHECK(parse_url("unix:///tmp/r.sock?db=3&password=hunter2").redacted() == "unix:///tmp/r.sock?db=3&password=***");
  CHECK(parse_url("redis://alice:@redis.local").redacted() == "redis://alice:@redis.local:6379");
  CHECK(parse_url("unix:///tmp/r.sock").redacted() == "unix:///tmp/r.sock");

  for (const char* url : {"redis://alice:hunter2@h", "redis://hunter2@h", "redis://:hunter2@h/1",
                          "rediss://bob:hunter2@[::1]:7000", "redis://bob:hunter2%40x@h",
                          "unix:///s.sock?password=hunter2", "unix:///s.sock?user=u&password=hunter2&db=1"}) {
    CAPTURE(url);
    CHECK(parse_url(url).redacted().find("hunter2") == std::string::npos);
  }
  Endpoint set_directly;
  set_directly.password = "hunter2";
  CHECK(set_directly.redacted() == "redis://***@127.0.0.1:6379");
}

TEST_CASE("Endpoint::redacted output parses back to the same endpoint (without the password)") {
  for (const char* url : {"redis://h", "redis://alice@h:1/2", "rediss://[::1]:6380/9", "unix:///tmp/r.sock?db=3"}) {
    CAPTURE(url);
    Endpoint original = parse_url(url);
    Endpoint again = parse_url(original.redacted());
    CHECK(again.kind == original.kind);
    CHECK(again.tls.enabled == original.tls.enabled);
    CHECK(again.host == original.host);
    CHECK(again.port == original.port);
    CHECK(again.path == original.path);
    CHECK(again.db == original.db);
  }
}

TEST_CASE("parse_url: TLS query keys and the spellings of other clients") {
  Endpoint endpoint = parse_url("rediss://h:6380/1?cacert=/ca.pem&cacertdir=/certs&cert=/c.pem&key=/k.pem"
                                "&server_name=redis.example");
  CHECK(endpoint.tls.enabled);
  CHECK(endpoint.db == 1);
  CHECK(endpoint.tls.cacert == "/ca.pem");
  CHECK(endpoint.tls.cacertdir == "/certs");
  CHECK(endpoint.tls.cert == "/c.pem");
  CHECK(endpoint.tls.key == "/k.pem");
  CHECK(endpoint.tls.server_name == "redis.example");
  CHECK(endpoint.tls.verify == TlsVerify::full);

  Endpoint py = parse_url("rediss://h?ssl_ca_certs=%2Fa%20b.pem&ssl_ca_path=/d&ssl_certfile=/c&ssl_keyfile=/k");
  CHECK(py.tls.cacert == "/a b.pem");
  CHECK(py.tls.cacertdir == "/d");
  CHECK(py.tls.cert == "/c");
  CHECK(py.tls.key == "/k");

  CHECK(parse_url("rediss://h?verify=ca").tls.verify == TlsVerify::ca);
  CHECK(parse_url("rediss://h?verify=none").tls.verify == TlsVerify::none);
  CHECK(parse_url("rediss://h?verify=full").tls.verify == TlsVerify::full);
  CHECK(parse_url("rediss://h?ssl_cert_reqs=none").tls.verify == TlsVerify::none);
  CHECK(parse_url("rediss://h?ssl_cert_reqs=required").tls.verify == TlsVerify::full);
  CHECK(parse_url("rediss://h?ssl_check_hostname=false").tls.verify == TlsVerify::ca);
  CHECK(parse_url("rediss://h?ssl_cert_reqs=required&ssl_check_hostname=false").tls.verify == TlsVerify::ca);
  CHECK(parse_url("rediss://h?skip_verify=true").tls.verify == TlsVerify::none);
  CHECK(parse_url("rediss://h?skip_verify=false").tls.verify == TlsVerify::full);
  CHECK(parse_url("rediss://h?verifyPeer=NONE").tls.verify == TlsVerify::none);
  CHECK(parse_url("rediss://h?verifyPeer=CA").tls.verify == TlsVerify::ca);
  CHECK(parse_url("rediss://h?verifyPeer=FULL").tls.verify == TlsVerify::full);
  // When several keys weaken verification, the weakest wins, whatever the order.
  CHECK(parse_url("rediss://h?verify=none&verify=full").tls.verify == TlsVerify::none);
  CHECK(parse_url("rediss://h?verifyPeer=FULL&ssl_check_hostname=false").tls.verify == TlsVerify::ca);
  CHECK(parse_url("redis://h?db=4").db == 4);
}

TEST_CASE("parse_url: a password may hold '?', the query starts after the last '@'") {
  Endpoint endpoint = parse_url("rediss://alice:pa?ss@h:1?verify=ca");
  CHECK(endpoint.password == std::string("pa?ss"));
  CHECK(endpoint.host == "h");
  CHECK(endpoint.tls.verify == TlsVerify::ca);
}

TEST_CASE("parse_url: unknown or bad TLS keys are configuration errors; REDIS_URL skips other clients' tuning") {
  for (const char* bad : {"rediss://h?socket_timeout=5", "rediss://h?verify=maybe",
                          "rediss://h?cacert=", "rediss://h?ssl_cert_reqs=sometimes", "rediss://h?skip_verify=perhaps",
                          "rediss://h?verifyPeer=HALF", "rediss://h?ssl_check_hostname=2", "rediss://h?server_name="}) {
    CAPTURE(bad);
    config_error_of(bad);
  }
  CHECK(config_error_of("rediss://h?socket_timeout=5").find("socket_timeout") != std::string::npos);

  std::vector<std::string> ignored;
  Endpoint shared =
      parse_url("rediss://h?socket_timeout=5&cacert=/ca.pem&health_check_interval=3", UrlOrigin::shared, &ignored);
  CHECK(shared.tls.cacert == "/ca.pem");
  CHECK(ignored == std::vector<std::string>{"socket_timeout", "health_check_interval"});
  for (const char* tls_like : {"rediss://h?ssl_ciphers=HIGH", "rediss://h?tls_min=1.3", "rediss://h?ca=/x",
                               "rediss://h?ssl_password=x", "rediss://h?insecure_skip=1", "rediss://h?sni=x"}) {
    CAPTURE(tls_like);
    CHECK_THROWS_AS(parse_url(tls_like, UrlOrigin::shared, &ignored), ConfigError);
  }
}

TEST_CASE("Endpoint::url() and redacted() carry the TLS settings") {
  Endpoint endpoint = parse_url("rediss://u:secret@h:6380?cacert=/etc/ca%20x.pem&server_name=r.example&verify=ca");
  CHECK(endpoint.redacted() == "rediss://u:***@h:6380?cacert=/etc/ca%20x.pem&server_name=r.example&verify=ca");
  Endpoint again = parse_url(endpoint.url());
  CHECK(again.tls.cacert == "/etc/ca x.pem");
  CHECK(again.tls.server_name == "r.example");
  CHECK(again.tls.verify == TlsVerify::ca);
  CHECK(again.password == std::string("secret"));
}

TEST_CASE("the trust-store probe list covers the usual distributions") {
  std::vector<std::string> candidates = system_trust_store_candidates();
  for (const char* path :
       {"/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", "/etc/ca-certificates/extracted/tls-ca-bundle.pem"}) {
    CAPTURE(path);
    CHECK(std::find(candidates.begin(), candidates.end(), path) != candidates.end());
  }
}

TEST_CASE("parse_url: Sentinel URLs name the sentinels and the master") {
  using rlock::redis::Routing;
  Endpoint plain = parse_url("redis+sentinel://alice:pw@s1,s2:26380,[::1]/mymaster/3?sentinel_user=watcher");
  CHECK(plain.routing == Routing::sentinel);
  REQUIRE(plain.seeds.size() == 3);
  CHECK(plain.seeds[0].host == "s1");
  CHECK(plain.seeds[0].port == 26379);
  CHECK(plain.seeds[1].port == 26380);
  CHECK(plain.seeds[2].host == "::1");
  CHECK(plain.host == "s1");
  CHECK(plain.master_name == "mymaster");
  CHECK(plain.db == 3);
  CHECK(plain.user == "alice");
  CHECK(plain.password == "pw");
  CHECK(plain.sentinel_user == "watcher");
  CHECK_FALSE(plain.tls.enabled);
  CHECK_FALSE(plain.sentinel_tls);

  Endpoint tls = parse_url("rediss+sentinel://s1/m");
  CHECK(tls.tls.enabled);
  CHECK(tls.sentinel_tls);
  CHECK_FALSE(parse_url("rediss+sentinel://s1/m?sentinel_tls=no").sentinel_tls);

  // Lettuce's spelling: the path is the database, the master a query key.
  Endpoint lettuce = parse_url("redis-sentinel://s1:26379,s2/2?sentinelMasterId=orders");
  CHECK(lettuce.routing == Routing::sentinel);
  CHECK(lettuce.master_name == "orders");
  CHECK(lettuce.db == 2);
  CHECK(lettuce.seeds.size() == 2);

  CHECK(config_error_of("redis+sentinel://s1,s2").find("names the master") != std::string::npos);
  CHECK(config_error_of("redis-sentinel://s1/0").find("sentinelMasterId") != std::string::npos);
  CHECK(config_error_of("redis+sentinel://s1/a?sentinelMasterId=b").find("sentinelMasterId 'b'") != std::string::npos);
  CHECK(config_error_of("redis+sentinel://s1,/m").find("no host") != std::string::npos);
  CHECK(config_error_of("redis://h?sentinel_user=x").find("unknown parameter 'sentinel_user'") != std::string::npos);
}

TEST_CASE("parse_url: Cluster URLs list seeds and have only database 0") {
  using rlock::redis::Routing;
  Endpoint cluster = parse_url("rediss+cluster://u:p@n1:7000,n2:7001,n3?cacert=/ca.pem");
  CHECK(cluster.routing == Routing::cluster);
  CHECK(cluster.tls.enabled);
  REQUIRE(cluster.seeds.size() == 3);
  CHECK(cluster.seeds[2].port == 6379);
  CHECK(cluster.host == "n1");
  CHECK(cluster.port == 7000);
  CHECK(config_error_of("redis+cluster://n1/1").find("only database 0") != std::string::npos);
  CHECK(config_error_of("redis://n1,n2").find("redis+cluster://") != std::string::npos);
}

TEST_CASE("Endpoint::url and redacted keep the routing, the hosts and the master") {
  for (const char* url : {"redis+sentinel://a:pw@s1:26379,s2:26380/mymaster/2?sentinel_user=w",
                          "rediss+sentinel://s1:1,s2:2/m?sentinel_tls=no", "redis+cluster://n1:7000,[::1]:7001",
                          "rediss+cluster://u:p@n1:7000"}) {
    CAPTURE(url);
    Endpoint first = parse_url(url);
    Endpoint again = parse_url(first.url());
    CHECK(again.routing == first.routing);
    CHECK(again.seeds.size() == first.seeds.size());
    for (std::size_t i = 0; i < std::min(again.seeds.size(), first.seeds.size()); ++i) {
      CHECK(again.seeds[i].host == first.seeds[i].host);
      CHECK(again.seeds[i].port == first.seeds[i].port);
    }
    CHECK(again.master_name == first.master_name);
    CHECK(again.db == first.db);
    CHECK(again.password == first.password);
    CHECK(again.sentinel_user == first.sentinel_user);
    CHECK(again.sentinel_tls == first.sentinel_tls);
    CHECK(again.tls.enabled == first.tls.enabled);
    CHECK(first.redacted().find("pw") == std::string::npos);
  }
  CHECK(parse_url("redis+sentinel://a:pw@s1,s2/m").redacted() == "redis+sentinel://a:***@s1:26379,s2:26379/m");
}
