// SPDX-License-Identifier: MIT
// Black-box tests of TLS (TLS in rlock(1)) against a real redis-server with a TLS port and
// certificates made per run by make_tls_certs.sh: verification by default, every way to give
// the settings, every failure and its exit code, and the lock commands over TLS.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"
#include "stub_server.hpp"
#include "tls_support.hpp"

#include <doctest/doctest.h>

namespace rlock::test {

namespace {

RedisServerOptions tls_server(const std::string& cert = "server", const std::string& auth_clients = "no") {
  RedisServerOptions options;
  options.tls_cert = tls_cert(cert + ".crt");
  options.tls_key = tls_cert(cert + ".key");
  options.tls_ca = tls_cert("ca.crt");
  options.tls_auth_clients = auth_clients;
  return options;
}

// The test CA as the whole trust store, the way a system store is found.
RunOptions trusting_test_ca() {
  RunOptions options;
  options.env = {"SSL_CERT_FILE=" + tls_cert("ca.crt"), "SSL_CERT_DIR=/nonexistent"};
  return options;
}

std::string with_cacert(const std::string& query_extra = {}) { return "?cacert=" + tls_cert("ca.crt") + query_extra; }

RunResult acquire_over(const std::string& url, std::vector<std::string> extra = {}, const RunOptions& options = {}) {
  std::vector<std::string> args{"--url", url};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"acquire", "job", "--lease", "-n"});
  return run_rlock(args, options);
}

// A config file of its own, named by RLOCK_CONFIG, with no profile or TLS variable from outside.
struct TlsConfig {
  TempDir dir;
  std::string path = dir.file("config");

  explicit TlsConfig(const std::string& text) {
    write_file(dir.file("ca.pem"), read_file(tls_cert("ca.crt")), 0600);
    write_file(path, text, 0600);
  }
  RunOptions options(std::vector<std::string> env = {}) const {
    RunOptions options;
    options.env = {"RLOCK_CONFIG=" + path};
    for (auto& entry : env) options.env.push_back(std::move(entry));
    options.unset_env = {"RLOCK_PROFILE", "RLOCK_URL", "RLOCK_CACERT",         "RLOCK_CACERTDIR",
                         "RLOCK_CERT",    "RLOCK_KEY", "RLOCK_TLS_SERVER_NAME"};
    return options;
  }
};

// One field of `rlock ARGS config show --json`, by a Python expression over `d`.
std::string shown(const std::vector<std::string>& global_args, const RunOptions& options,
                  const std::string& expression) {
  std::vector<std::string> args = global_args;
  args.insert(args.end(), {"config", "show", "--json"});
  const RunResult show = run_rlock(args, options);
  INFO(show.describe());
  REQUIRE(show.exit_code == 0);
  const RunResult field = run_python("import json,sys\nd = json.loads(sys.argv[1])\nv = " + expression +
                                         "\nprint('null' if v is None else v)",
                                     {show.out});
  INFO(field.describe());
  REQUIRE(field.exit_code == 0);
  return trim(field.out);
}

} // namespace

TEST_CASE("rediss:// with a certificate naming the host works with no other TLS setting") {
  RedisServer redis(tls_server());
  const RunResult result = run_rlock({"--url", redis.tls_url(), "exec", "job", "--", "true"}, trusting_test_ca());
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty()); // full verification: no warning
}

TEST_CASE("the certificate is verified by IP literal too") {
  RedisServer redis(tls_server());
  const RunResult result = acquire_over(redis.tls_url("127.0.0.1", with_cacert()));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(redis.command({"GET", lock_key("job")}) == trim(result.out));
}

TEST_CASE("the CA comes from the URL, a flag or RLOCK_CACERT; a flag beats the URL, the URL beats the env") {
  RedisServer redis(tls_server());
  const std::string good = tls_cert("ca.crt");
  const std::string foreign = tls_cert("foreign-ca.crt");
  std::string url = redis.tls_url();
  std::vector<std::string> extra;
  RunOptions options;
  int expected = 0;
  SUBCASE("URL cacert") { url += "?cacert=" + good; }
  SUBCASE("redis-py's ssl_ca_certs") { url += "?ssl_ca_certs=" + good; }
  SUBCASE("--cacert") { extra = {"--cacert", good}; }
  SUBCASE("RLOCK_CACERT") { options.env = {"RLOCK_CACERT=" + good}; }
  SUBCASE("--cacertdir") {
    // A hashed directory as c_rehash makes it.
    TempDir hashed;
    RunResult hash = run_program({"openssl", "x509", "-hash", "-noout", "-in", good});
    REQUIRE(hash.exit_code == 0);
    write_file(hashed.file(trim(hash.out) + ".0"), read_file(good));
    const RunResult result = acquire_over(url, {"--cacertdir", hashed.path()});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    return;
  }
  SUBCASE("flag over URL") {
    url += "?cacert=" + foreign;
    extra = {"--cacert", good};
  }
  SUBCASE("URL over env") {
    url += "?cacert=" + good;
    options.env = {"RLOCK_CACERT=" + foreign};
  }
  SUBCASE("flag over URL, the other way round") {
    url += "?cacert=" + good;
    extra = {"--cacert", foreign};
    expected = 78;
  }
  const RunResult result = acquire_over(url, extra, options);
  INFO(result.describe());
  CHECK(result.exit_code == expected);
}

TEST_CASE("an untrusted or expired certificate, or one for another name, exits 78 saying why and what name") {
  std::string cert;
  std::string reason;
  std::string host = "localhost";
  SUBCASE("another CA") {
    cert = "foreign-server";
    reason = "unable to get local issuer certificate";
  }
  SUBCASE("another host") {
    cert = "other";
    reason = "hostname mismatch";
  }
  SUBCASE("another host, dialled by IP") {
    cert = "other";
    host = "127.0.0.1";
    reason = "IP address mismatch";
  }
  SUBCASE("expired") {
    cert = "expired";
    reason = "certificate has expired";
  }
  RedisServer redis(tls_server(cert));
  const RunResult result = acquire_over(redis.tls_url(host, with_cacert()));
  INFO(result.describe());
  CHECK(result.exit_code == 78);
  check_error_line(result);
  CHECK(contains(result.err, reason));
  CHECK(contains(result.err, "expected name '" + host + "'"));
  CHECK(contains(result.err, "127.0.0.1:" + std::to_string(redis.tls_port())) == (host == "127.0.0.1"));
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("an intermediate CA sent by the server chains to the trusted root") {
  RedisServerOptions options = tls_server();
  options.tls_cert = tls_cert("chain.crt");
  options.tls_key = tls_cert("chain-leaf.key");
  RedisServer redis(options);
  const RunResult result = acquire_over(redis.tls_url("localhost", with_cacert()));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
}

TEST_CASE("--tls-server-name (or --sni, or server_name=) names the certificate to expect") {
  RedisServer redis(tls_server("other"));
  std::string url = redis.tls_url("127.0.0.1", with_cacert());
  std::vector<std::string> extra;
  RunOptions options;
  SUBCASE("--tls-server-name") { extra = {"--tls-server-name", "other.example"}; }
  SUBCASE("--sni") { extra = {"--sni", "other.example"}; }
  SUBCASE("server_name=") { url += "&server_name=other.example"; }
  SUBCASE("RLOCK_TLS_SERVER_NAME") { options.env = {"RLOCK_TLS_SERVER_NAME=other.example"}; }
  const RunResult result = acquire_over(url, extra, options);
  INFO(result.describe());
  CHECK(result.exit_code == 0);
}

TEST_CASE("verify ca skips the name, verify none everything; each warns on every run") {
  RedisServer redis(tls_server("other"));
  std::string url = redis.tls_url("localhost", with_cacert());
  std::vector<std::string> extra;
  std::string warning = "verify=ca";
  SUBCASE("verify=ca") { url += "&verify=ca"; }
  SUBCASE("ssl_check_hostname=false") { url += "&ssl_check_hostname=false"; }
  SUBCASE("verifyPeer=CA") { url += "&verifyPeer=CA"; }
  SUBCASE("--tls-verify ca") { extra = {"--tls-verify", "ca"}; }
  SUBCASE("--insecure") {
    extra = {"--insecure"};
    warning = "verify=none";
  }
  SUBCASE("skip_verify=true") {
    url += "&skip_verify=true";
    warning = "verify=none";
  }
  SUBCASE("ssl_cert_reqs=none") {
    url += "&ssl_cert_reqs=none";
    warning = "verify=none";
  }
  for (int run = 0; run < 2; ++run) {
    const RunResult result = run_rlock([&] {
      std::vector<std::string> args{"--url", url};
      args.insert(args.end(), extra.begin(), extra.end());
      args.insert(args.end(), {"exec", "job", "--", "true"});
      return args;
    }());
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.err, "rlock: warning: TLS:"));
    CHECK(contains(result.err, warning));
  }
}

TEST_CASE("verify none accepts a certificate from an unknown CA; no variable can turn verification off") {
  RedisServer redis(tls_server("foreign-server"));
  const RunResult insecure = acquire_over(redis.tls_url(), {"--insecure"});
  INFO(insecure.describe());
  CHECK(insecure.exit_code == 0);
  RunOptions options;
  options.env = {"RLOCK_TLS_VERIFY=none", "RLOCK_INSECURE=1", "RLOCK_CACERT=" + tls_cert("ca.crt")};
  const RunResult env_only = run_rlock({"--url", redis.tls_url(), "status", "job"}, options);
  INFO(env_only.describe());
  CHECK(env_only.exit_code == 78);
}

TEST_CASE("bad certificate and key files exit 78 naming the file") {
  RedisServer redis(tls_server("server", "optional"));
  TempDir dir;
  write_file(dir.file("garbage.pem"), "not a certificate\n");
  std::vector<std::string> extra;
  std::string named;
  std::string says;
  SUBCASE("missing CA file") {
    extra = {"--cacert", dir.file("missing.crt")};
    named = dir.file("missing.crt");
    says = "No such file";
  }
  SUBCASE("CA file that is not PEM") {
    extra = {"--cacert", dir.file("garbage.pem")};
    named = dir.file("garbage.pem");
    says = "no certificate or crl found"; // libcrypto's reason, readable though its strings load late
  }
  SUBCASE("client certificate that is not PEM") {
    extra = {"--cacert", tls_cert("ca.crt"), "--cert", dir.file("garbage.pem"), "--key", tls_cert("client.key")};
    named = dir.file("garbage.pem");
    says = "PEM lib"; // libssl's reason
  }
  SUBCASE("missing key") {
    extra = {"--cacert", tls_cert("ca.crt"), "--cert", tls_cert("client.crt"), "--key", dir.file("none.key")};
    named = dir.file("none.key");
  }
  SUBCASE("encrypted key") {
    extra = {
        "--cacert", tls_cert("ca.crt"), "--cert", tls_cert("client.crt"), "--key", tls_cert("client-encrypted.key")};
    named = tls_cert("client-encrypted.key");
    says = "encrypted";
  }
  SUBCASE("key of another certificate") {
    extra = {"--cacert", tls_cert("ca.crt"), "--cert", tls_cert("client.crt"), "--key", tls_cert("server.key")};
    named = tls_cert("server.key");
    says = "does not belong";
  }
  SUBCASE("CA directory that is not one") {
    extra = {"--cacertdir", dir.file("garbage.pem")};
    named = dir.file("garbage.pem");
  }
  const RunResult result = acquire_over(redis.tls_url(), extra);
  INFO(result.describe());
  CHECK(result.exit_code == 78);
  check_error_line(result);
  CHECK(contains(result.err, named));
  CHECK(contains(result.err, says));
}

TEST_CASE("mutual TLS: a required client certificate is sent; none, or one the server does not trust, exits 77") {
  SUBCASE("required, given") {
    RedisServer redis(tls_server("server", "yes"));
    const RunResult result = acquire_over(
        redis.tls_url("localhost", with_cacert("&cert=" + tls_cert("client.crt") + "&key=" + tls_cert("client.key"))));
    INFO(result.describe());
    CHECK(result.exit_code == 0);
  }
  SUBCASE("required, given by flags and env") {
    RedisServer redis(tls_server("server", "yes"));
    RunOptions options;
    options.env = {"RLOCK_CERT=" + tls_cert("client.crt"), "RLOCK_KEY=" + tls_cert("client.key")};
    const RunResult result = acquire_over(redis.tls_url(), {"--cacert", tls_cert("ca.crt")}, options);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
  }
  SUBCASE("optional, none given") {
    RedisServer redis(tls_server("server", "optional"));
    const RunResult result = acquire_over(redis.tls_url("localhost", with_cacert()));
    INFO(result.describe());
    CHECK(result.exit_code == 0);
  }
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    SUBCASE(version) {
      RedisServerOptions options = tls_server("server", "yes");
      options.extra_config = {std::string("tls-protocols ") + version};
      RedisServer redis(options);
      SUBCASE("required, none given") {
        const RunResult result = acquire_over(redis.tls_url("localhost", with_cacert()));
        INFO(result.describe());
        CHECK(result.exit_code == 77);
        check_error_line(result);
        CHECK(contains(result.err, "requires a TLS client certificate"));
      }
      SUBCASE("required, one from another CA") {
        const RunResult result =
            acquire_over(redis.tls_url(), {"--cacert", tls_cert("ca.crt"), "--cert", tls_cert("foreign-client.crt"),
                                           "--key", tls_cert("foreign-client.key")});
        INFO(result.describe());
        CHECK(result.exit_code == 77);
        check_error_line(result);
        CHECK(contains(result.err, "refused the TLS client certificate " + tls_cert("foreign-client.crt")));
      }
      CHECK_FALSE(key_exists(redis, lock_key("job")));
    }
  }
}

TEST_CASE("TLS to a plaintext port: 78 when it answers in clear, 69 when nothing answers") {
  SUBCASE("a server that answers in clear") {
    StubServer stub(StubMode::reply_and_close, "-ERR unknown command\r\n");
    const RunResult result = acquire_over("rediss://127.0.0.1:" + std::to_string(stub.port()), {"--insecure"});
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    CHECK(contains(result.err, "127.0.0.1:" + std::to_string(stub.port()) + " does not speak TLS"));
  }
  SUBCASE("a server that never answers") {
    StubServer stub(StubMode::silent);
    const RunResult result =
        acquire_over("rediss://127.0.0.1:" + std::to_string(stub.port()), {"--insecure", "--connect-timeout", "300ms"});
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    CHECK(contains(result.err, "no TLS answer"));
    CHECK(contains(result.err, "is it a plaintext port?"));
  }
  SUBCASE("redis-server's plaintext port") {
    RedisServer redis;
    const RunResult result = acquire_over("rediss://127.0.0.1:" + std::to_string(redis.port()),
                                          {"--insecure", "--connect-timeout", "500ms"});
    INFO(result.describe());
    // Redis reads a ClientHello as an inline command: it answers an error when the random
    // bytes hold a newline, and waits for one otherwise.
    CHECK((result.exit_code == 78 || result.exit_code == 69));
    CHECK((contains(result.err, "does not speak TLS") || contains(result.err, "is it a plaintext port?")));
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
}

TEST_CASE("plaintext to a TLS port exits 69 with the hint that it may require TLS") {
  RedisServer redis(tls_server());
  const RunResult result = acquire_over("redis://127.0.0.1:" + std::to_string(redis.tls_port()));
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(contains(result.err, "server may require TLS (rediss://)"));
}

TEST_CASE("--tls turns a redis:// URL into TLS; TLS settings without TLS are a configuration error") {
  RedisServer redis(tls_server());
  const std::string plain_url = "redis://localhost:" + std::to_string(redis.tls_port());
  const RunResult with_flag = acquire_over(plain_url, {"--tls", "--cacert", tls_cert("ca.crt")});
  INFO(with_flag.describe());
  CHECK(with_flag.exit_code == 0);
  const RunResult url_keys = acquire_over(plain_url + with_cacert());
  INFO(url_keys.describe());
  CHECK(url_keys.exit_code == 78);
  const RunResult flag_only = acquire_over(redis.url(), {"--cacert", tls_cert("ca.crt")});
  INFO(flag_only.describe());
  CHECK(flag_only.exit_code == 78);
}

TEST_CASE("unknown URL keys: 78 in --url and RLOCK_URL; in REDIS_URL other clients' tuning is skipped, TLS never") {
  RedisServer redis(tls_server());
  const std::string base = redis.tls_url("localhost", with_cacert());
  const RunResult own = acquire_over(base + "&socket_timeout=5");
  INFO(own.describe());
  CHECK(own.exit_code == 78);
  CHECK(contains(own.err, "socket_timeout"));

  RunOptions env;
  env.env = {"RLOCK_URL=" + base + "&pool_size=3"};
  const RunResult rlock_url = run_rlock({"status", "job"}, env);
  INFO(rlock_url.describe());
  CHECK(rlock_url.exit_code == 78);

  env.env = {"REDIS_URL=" + base + "&socket_timeout=5&health_check_interval=10"};
  const RunResult shared = run_rlock({"-v", "status", "job"}, env);
  INFO(shared.describe());
  CHECK(shared.exit_code == 1); // free
  CHECK(contains(shared.err, "ignoring 'socket_timeout'"));
  CHECK(contains(shared.err, "ignoring 'health_check_interval'"));

  env.env = {"REDIS_URL=" + base + "&ssl_ciphers=HIGH"};
  const RunResult tls_like = run_rlock({"status", "job"}, env);
  INFO(tls_like.describe());
  CHECK(tls_like.exit_code == 78);
  CHECK(contains(tls_like.err, "ssl_ciphers"));
}

TEST_CASE("every connection to the TLS port starts with a TLS handshake: exec, split form, waiting, status") {
  RedisServer redis(tls_server());
  RecordingProxy proxy(redis.tls_port());
  const std::string url = "rediss://localhost:" + std::to_string(proxy.port()) + with_cacert();
  auto rlock_at = [&url](std::vector<std::string> args) {
    args.insert(args.begin(), {"--url", url});
    return args;
  };

  const RunResult exec = run_rlock(rlock_at({"exec", "job", "--", "true"}));
  INFO(exec.describe());
  CHECK(exec.exit_code == 0);

  // Split form with a keeper: acquire, the keeper renews, release stops it.
  BackgroundProcess owner({"sleep", "60"});
  const RunResult acquired =
      run_rlock(rlock_at({"acquire", "job", "--ttl", "900ms", "--owner-pid", std::to_string(owner.pid())}));
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  const std::string token = trim(acquired.out);
  // The keeper renews over its own TLS connection: the lock outlives several TTLs.
  CHECK(wait_until(
      [&] {
        const std::string renewals = redis.command({"HGET", meta_key("job"), meta_field("renewals")});
        return !renewals.empty() && renewals != "(nil)" && std::stoll(renewals) >= 3;
      },
      10s));
  CHECK(redis.command({"GET", lock_key("job")}) == token);

  // A waiter wakes when the lock is released.
  BackgroundProcess waiter(with_rlock(rlock_at({"acquire", "job", "--lease", "-w", "20s"})));
  REQUIRE(wait_until([&] { return split_lines(redis.command({"CLIENT", "LIST"})).size() >= 3; }, 10s));
  const RunResult status = run_rlock(rlock_at({"status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(contains(status.out, "job"));
  const RunResult released = run_rlock(rlock_at({"release", "job", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK(waiter.wait(15s) == 0);
  INFO("waiter stderr: ", waiter.err());
  const std::string second = trim(waiter.out());
  CHECK(is_token(second));
  CHECK(redis.command({"GET", lock_key("job")}) == second);

  const std::vector<int> first_bytes = proxy.first_bytes();
  CHECK(first_bytes.size() >= 6);
  for (int byte : first_bytes) CHECK(byte == 0x16);
}

TEST_CASE("a TLS failure while a lease is held is an outage: retried, and the job goes on when it clears") {
  RedisServerOptions options = tls_server();
  options.appendfsync_always = true;           // the lock survives the restarts
  options.extra_config = {"loglevel verbose"}; // logs the handshakes rlock refuses
  RedisServer redis(options);
  TempDir dir;
  const std::string go = dir.file("go");
  BackgroundProcess job(with_rlock({"--url", redis.tls_url("localhost", with_cacert()), "exec", "job", "--ttl", "15s",
                                    "--", "sh", "-c", "while [ ! -e " + go + " ]; do sleep 0.05; done"}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));
  // The server comes back with a certificate for another name: the renewal's reconnection
  // fails verification (rlock sends the alert the server logs), and is retried.
  redis.stop();
  redis.options().tls_cert = tls_cert("other.crt");
  redis.options().tls_key = tls_cert("other.key");
  redis.start();
  REQUIRE(wait_until([&] { return contains(redis.log(), "Error accepting a client connection"); }, 10s));
  INFO("server log: ", redis.log());
  CHECK(job.running());
  redis.stop();
  redis.options().tls_cert = tls_cert("server.crt");
  redis.options().tls_key = tls_cert("server.key");
  redis.start();
  write_file(go, "");
  const int code = job.wait(20s);
  INFO("job stderr: ", job.err());
  CHECK(code == 0);
}

TEST_CASE("SNI carries the name dialled or --tls-server-name, never an IP literal") {
  // openssl s_server presents sni.crt to clients that ask for redis.test and server.crt to
  // the others, and logs the extensions it sees. It is no Redis: once the handshake and the
  // verification pass, rlock waits for a reply until --io-timeout (69), which tells this
  // apart from a verification failure (78).
  const int port = free_port();
  // s_server stops at the end of its input: give it one that stays open.
  BackgroundProcess server({"sh", "-c",
                            "sleep 600 | exec openssl s_server -accept 127.0.0.1:" + std::to_string(port) + " -cert " +
                                tls_cert("server.crt") + " -key " + tls_cert("server.key") + " -cert2 " +
                                tls_cert("sni.crt") + " -key2 " + tls_cert("sni.key") +
                                " -servername redis.test -tlsextdebug"});
  REQUIRE(wait_until([&] { return contains(server.out(), "ACCEPT"); }, 20s));
  auto dial = [&](const std::string& host, std::vector<std::string> extra) {
    std::vector<std::string> args{"--url", "rediss://" + host + ":" + std::to_string(port) + with_cacert(),
                                  "--io-timeout", "300ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"status", "job"});
    return run_rlock(args);
  };
  const RunResult named = dial("127.0.0.1", {"--tls-server-name", "redis.test"});
  INFO(named.describe());
  CHECK(named.exit_code == 69); // sni.crt was presented and verified for redis.test
  CHECK(wait_until([&] { return contains(server.out(), "Hostname in TLS extension: \"redis.test\""); }, 5s));

  const RunResult by_ip = dial("127.0.0.1", {});
  INFO(by_ip.describe());
  CHECK(by_ip.exit_code == 69); // server.crt, verified for IP 127.0.0.1
  const RunResult by_name = dial("localhost", {});
  INFO(by_name.describe());
  CHECK(by_name.exit_code == 69);
  CHECK(wait_until(
      [&] {
        return contains(server.out(), "Hostname in TLS extension: \"localhost\"") ||
               contains(server.out(), "server name");
      },
      5s));
  // Three handshakes, two with a name: only the IP literal went without.
  const std::string log = server.out();
  std::size_t with_sni = 0;
  for (std::size_t at = log.find("TLS client extension \"server name\""); at != std::string::npos;
       at = log.find("TLS client extension \"server name\"", at + 1)) {
    ++with_sni;
  }
  CHECK(with_sni == 2);
}

TEST_CASE("config file: a profile holds a TLS endpoint, below the env and the URL's query, above the file") {
  RedisServer redis(tls_server());
  const std::string port = std::to_string(redis.tls_port());
  const std::string foreign = tls_cert("foreign-ca.crt");
  // cacert is relative to the file; the plain profile's server does not use it (nor fail on it).
  TlsConfig config("cacert = ca.pem\n"
                   "[profile tls]\n"
                   "url = rediss://localhost:" +
                   port +
                   "\n"
                   "[profile flagged]\n"
                   "url = redis://localhost:" +
                   port +
                   "\n"
                   "tls = yes\n"
                   "[profile plain]\n"
                   "url = " +
                   redis.url() +
                   "\n"
                   "[profile foreign]\n"
                   "url = rediss://localhost:" +
                   port +
                   "\n"
                   "cacert = " +
                   foreign +
                   "\n"
                   "[profile weak]\n"
                   "url = rediss://localhost:" +
                   port +
                   "\n"
                   "cacert = " +
                   foreign +
                   "\n"
                   "tls-verify = none\n");
  const auto acquire = [&](const std::string& profile, const std::string& name, const RunOptions& options) {
    return run_rlock({"--profile", profile, "acquire", name, "--lease", "-n"}, options);
  };
  SUBCASE("the profile's url and the file's cacert") {
    const RunResult result = acquire("tls", "a", config.options());
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(result.err.empty());
    CHECK(shown({"--profile", "tls"}, config.options(), "d['settings']['cacert']['value']") ==
          config.dir.file("ca.pem"));
    CHECK(shown({"--profile", "tls"}, config.options(), "d['settings']['cacert']['source']") == config.path + ":1");
    CHECK(shown({"--profile", "tls"}, config.options(), "d['settings']['tls']['origin']") == "url");
  }
  SUBCASE("tls = yes turns the profile's redis:// into TLS") {
    const RunResult result = acquire("flagged", "b", config.options());
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(shown({"--profile", "flagged"}, config.options(), "d['settings']['tls']['source']") ==
          "profile flagged " + config.path + ":6");
  }
  SUBCASE("a plaintext profile leaves the file's TLS settings unused") {
    const RunResult result = run_rlock({"-v", "--profile", "plain", "acquire", "c", "--lease", "-n"}, config.options());
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.err, "cacert"));
    CHECK(contains(result.err, "is not used"));
  }
  SUBCASE("the profile's cacert beats the file's: a foreign CA fails verification") {
    const RunResult result = acquire("foreign", "d", config.options());
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
  }
  SUBCASE("RLOCK_CACERT beats the profile, and the URL's own query beats RLOCK_CACERT") {
    const RunResult env_good = acquire("foreign", "e", config.options({"RLOCK_CACERT=" + tls_cert("ca.crt")}));
    INFO(env_good.describe());
    CHECK(env_good.exit_code == 0);
    CHECK(shown({"--profile", "foreign"}, config.options({"RLOCK_CACERT=" + tls_cert("ca.crt")}),
                "d['settings']['cacert']['source']") == "env RLOCK_CACERT");

    const std::vector<std::string> url_args{"--profile", "foreign", "--url", redis.tls_url("localhost", with_cacert())};
    const RunOptions env_foreign = config.options({"RLOCK_CACERT=" + foreign});
    const RunResult url_good = run_rlock(
        {"--profile", "foreign", "--url", redis.tls_url("localhost", with_cacert()), "acquire", "f", "--lease", "-n"},
        env_foreign);
    INFO(url_good.describe());
    CHECK(url_good.exit_code == 0);
    CHECK(shown(url_args, env_foreign, "d['settings']['cacert']['origin']") == "url");
    CHECK(shown(url_args, env_foreign, "d['settings']['cacert']['value']") == tls_cert("ca.crt"));
  }
  SUBCASE("tls-verify = none in the file works and warns on every run; a flag still wins") {
    const RunResult weak = acquire("weak", "g", config.options());
    INFO(weak.describe());
    CHECK(weak.exit_code == 0);
    CHECK(contains(weak.err, "not verified"));
    const RunResult strict =
        run_rlock({"--profile", "weak", "--tls-verify", "full", "acquire", "h", "--lease", "-n"}, config.options());
    INFO(strict.describe());
    CHECK(strict.exit_code == 78);
    CHECK(shown({"--profile", "weak", "--insecure"}, config.options(), "d['settings']['tls-verify']['source']") ==
          "flag --insecure");
  }
}

TEST_CASE("config file: bad TLS values exit 78 with FILE:LINE") {
  std::string text;
  std::string says;
  SUBCASE("tls") {
    text = "tls = maybe\n";
    says = "tls must be yes or no";
  }
  SUBCASE("tls-verify") {
    text = "[profile x]\ntls-verify = partly\n";
    says = "tls-verify must be full, ca or none";
  }
  TlsConfig config(text);
  const RunResult result = run_rlock({"config", "show"}, config.options());
  INFO(result.describe());
  CHECK(result.exit_code == 78);
  check_error_line(result);
  CHECK(contains(result.err, config.path + ":"));
  CHECK(contains(result.err, says));
}

TEST_CASE("--insecure contradicts --tls-verify full or ca: a usage error") {
  TlsConfig config("");
  const RunResult both = run_rlock({"--insecure", "--tls-verify", "ca", "config", "show"}, config.options());
  INFO(both.describe());
  CHECK(both.exit_code == 64);
  check_error_line(both);
  CHECK(contains(both.err, "--insecure contradicts --tls-verify ca"));
}

} // namespace rlock::test
