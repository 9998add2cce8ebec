// SPDX-License-Identifier: MIT
// Black-box tests of the TLS session cache (TLS SESSION CACHE in rlock(1)) against a real
// redis-server with a TLS port: the second run resumes; a tampered, corrupted, expired,
// group-readable or misplaced file is ignored and the run succeeds with a full handshake; a
// changed server certificate is verified again; an unsafe directory gets no file; a session of
// one verification mode is never offered to another.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"
#include "tls_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iterator>
#include <sys/stat.h>
#include <thread>

namespace rlock::test {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_resumed = "TLS session resumed";

RedisServerOptions tls_server(const std::string& cert = "server") {
  RedisServerOptions options;
  options.tls_cert = tls_cert(cert + ".crt");
  options.tls_key = tls_cert(cert + ".key");
  options.tls_ca = tls_cert("ca.crt");
  options.tls_auth_clients = "no";
  return options;
}

// A private runtime directory ($XDG_RUNTIME_DIR) for rlock's cache, and runs that use it.
struct Runtime {
  TempDir dir;
  std::string cache = dir.file("rlock");

  RunResult exec(const std::string& url, std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
    std::vector<std::string> args{"-v", "--url", url};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"exec", "job", "--", "true"});
    RunOptions options;
    options.env = {"XDG_RUNTIME_DIR=" + dir.path()};
    for (auto& entry : env) options.env.push_back(std::move(entry));
    return run_rlock(args, options);
  }
  // The session files, sorted by name.
  std::vector<std::string> files() const { return session_files(cache); }

  static std::vector<std::string> session_files(const std::string& path) {
    std::vector<std::string> found;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(path, error)) {
      if (entry.path().extension() == ".session") found.push_back(entry.path().string());
    }
    std::sort(found.begin(), found.end());
    return found;
  }
};

std::string cacert_query() { return "?cacert=" + tls_cert("ca.crt"); }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// The first run makes a full handshake and caches its session: the one file, returned.
std::string first_run(const Runtime& runtime, const std::string& url) {
  const RunResult first = runtime.exec(url);
  INFO(first.describe());
  REQUIRE(first.exit_code == 0);
  CHECK_FALSE(contains(first.err, k_resumed));
  CHECK(contains(first.err, "cached the TLS session"));
  REQUIRE(runtime.files().size() == 1);
  return runtime.files()[0];
}

// A run after the cached file was made unusable: ignored for `why`, a full handshake, success,
// and a fresh file cached in its place.
void check_ignored(const Runtime& runtime, const std::string& url, const std::string& why) {
  const RunResult run = runtime.exec(url);
  INFO(run.describe());
  CHECK(run.exit_code == 0);
  CHECK(contains(run.err, "ignoring the cached TLS session"));
  CHECK(contains(run.err, why));
  CHECK_FALSE(contains(run.err, k_resumed));
  CHECK(contains(run.err, "cached the TLS session"));
  const RunResult again = runtime.exec(url);
  INFO(again.describe());
  CHECK(again.exit_code == 0);
  CHECK(contains(again.err, k_resumed));
}

// The DER session inside a cache file: "MAGIC\nKEY_SIZE DER_SIZE\nKEY" DER SHA-256.
struct SessionFile {
  std::string head; // up to and including the key
  std::string der;

  explicit SessionFile(const std::string& text) {
    const std::size_t magic_end = text.find('\n');
    const std::size_t sizes_end = text.find('\n', magic_end + 1);
    REQUIRE(sizes_end != std::string::npos);
    std::size_t key_size = 0;
    std::size_t der_size = 0;
    REQUIRE(std::sscanf(text.substr(magic_end + 1, sizes_end - magic_end - 1).c_str(), "%zu %zu", &key_size,
                        &der_size) == 2);
    head = text.substr(0, sizes_end + 1 + key_size);
    der = text.substr(head.size(), der_size);
    REQUIRE(head.size() + der.size() + 32 == text.size());
  }
  // The file again, with a checksum that matches (openssl dgst -sha256).
  std::string with_checksum() const {
    RunOptions options;
    options.stdin_data = head + der;
    const RunResult digest = run_program({"openssl", "dgst", "-sha256", "-binary"}, options);
    REQUIRE(digest.exit_code == 0);
    REQUIRE(digest.out.size() == 32);
    return head + der + digest.out;
  }
  // Where the master key (the resumption secret under TLS 1.3) starts in der, and its size:
  // the fifth element of the SEQUENCE (version, protocol, cipher, session id, master key).
  std::pair<std::size_t, std::size_t> master_key() const {
    std::size_t at = 0;
    auto header = [&](std::size_t& length) {
      ++at; // tag
      const auto first = static_cast<unsigned char>(der.at(at++));
      length = first;
      if (first >= 0x80) {
        length = 0;
        for (unsigned i = 0; i < (first & 0x7fU); ++i)
          length = (length << 8) | static_cast<unsigned char>(der.at(at++));
      }
    };
    std::size_t length = 0;
    header(length); // the SEQUENCE
    for (int element = 0; element < 4; ++element) {
      header(length);
      at += length;
    }
    REQUIRE(static_cast<unsigned char>(der.at(at)) == 0x04); // OCTET STRING
    header(length);
    return {at, length};
  }
};

// The VERIFIED_AT of a cache file (the third number of its second line).
long verified_at(const std::string& text) {
  const std::size_t sizes_start = text.find('\n') + 1;
  const std::size_t sizes_end = text.find('\n', sizes_start);
  const std::string sizes = text.substr(sizes_start, sizes_end - sizes_start);
  return std::stol(sizes.substr(sizes.rfind(' ') + 1));
}

// The file with its VERIFIED_AT set to `at`, and a checksum that matches.
std::string with_verified_at(const std::string& text, long at) {
  SessionFile session(text);
  const std::size_t sizes_start = session.head.find('\n') + 1;
  const std::size_t sizes_end = session.head.find('\n', sizes_start);
  const std::string sizes = session.head.substr(sizes_start, sizes_end - sizes_start);
  session.head = session.head.substr(0, sizes_start) + sizes.substr(0, sizes.rfind(' ') + 1) + std::to_string(at) +
                 session.head.substr(sizes_end);
  return session.with_checksum();
}

} // namespace

TEST_CASE("the second run resumes the cached TLS session; the file is private") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::string file = first_run(runtime, url);
  CHECK(mode_of(runtime.cache) == 0700);
  CHECK(mode_of(file) == 0600);
  // The server's certificate is left out of the file: its DER is not in there.
  const RunResult cert_der = run_program({"openssl", "x509", "-in", tls_cert("server.crt"), "-outform", "DER"});
  REQUIRE(cert_der.exit_code == 0);
  CHECK_FALSE(contains(read_file(file), cert_der.out));
  for (int run = 0; run < 2; ++run) {
    const RunResult again = runtime.exec(url);
    INFO(again.describe());
    CHECK(again.exit_code == 0);
    CHECK(contains(again.err, k_resumed));
  }
  // Only the one file, no temporary left behind.
  CHECK(std::distance(fs::directory_iterator(runtime.cache), fs::directory_iterator()) == 1);
}

TEST_CASE("--tls-session-cache no and RLOCK_TLS_SESSION_CACHE=no: no file, no resumption") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  std::vector<std::string> extra;
  std::vector<std::string> env;
  SUBCASE("flag") { extra = {"--tls-session-cache", "no"}; }
  SUBCASE("env") { env = {"RLOCK_TLS_SESSION_CACHE=no"}; }
  for (int run = 0; run < 2; ++run) {
    const RunResult result = runtime.exec(url, extra, env);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK_FALSE(contains(result.err, k_resumed));
  }
  CHECK(runtime.files().empty());
  // And with it on again, the cache works (so that the above could have failed).
  first_run(runtime, url);
}

TEST_CASE("a tampered, group-readable or expired cached session is ignored; a full handshake replaces it") {
  RedisServerOptions options = tls_server();
  Runtime runtime;
  std::string why;
  std::function<void(const std::string&)> spoil;
  SUBCASE("a byte changed") {
    why = "checksum does not match";
    spoil = [](const std::string& file) {
      std::string text = read_file(file);
      text[text.size() / 2] = static_cast<char>(text[text.size() / 2] ^ 0x20);
      write_file(file, text, 0600);
    };
  }
  SUBCASE("truncated") {
    why = "not a session file";
    spoil = [](const std::string& file) { write_file(file, read_file(file).substr(0, 10), 0600); };
  }
  SUBCASE("sizes whose sum wraps around, with a valid checksum") {
    why = "not a session file";
    spoil = [](const std::string& file) {
      SessionFile session(read_file(file));
      const std::size_t sizes_start = session.head.find('\n') + 1;
      const std::size_t key_start = session.head.find('\n', sizes_start) + 1;
      const std::string key = session.head.substr(key_start);
      // SIZE_MAX + (key size + 1) wraps to the key's size: the key alone, no session after it.
      session.head = session.head.substr(0, sizes_start) + std::to_string(SIZE_MAX) + " " +
                     std::to_string(key.size() + 1) + " " + std::to_string(std::time(nullptr)) + "\n" + key;
      session.der.clear();
      write_file(file, session.with_checksum(), 0600);
    };
  }
  SUBCASE("group-readable") {
    why = "opens it to group or others";
    spoil = [](const std::string& file) { REQUIRE(::chmod(file.c_str(), 0640) == 0); };
  }
  SUBCASE("expired") {
    // The server gives its tickets a lifetime of one second.
    options.extra_config = {"tls-session-cache-timeout 1"};
    why = "it has expired";
    spoil = [](const std::string&) {
      // Not a synchronisation: the wall clock has to pass the session's lifetime.
      std::this_thread::sleep_for(2500ms);
    };
  }
  RedisServer redis(options);
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::string file = first_run(runtime, url);
  spoil(file);
  if (why == "it has expired") {
    const RunResult run = runtime.exec(url);
    INFO(run.describe());
    CHECK(run.exit_code == 0);
    CHECK(contains(run.err, why));
    CHECK_FALSE(contains(run.err, k_resumed));
    CHECK(contains(run.err, "cached the TLS session"));
    return; // the next run would find it expired again
  }
  check_ignored(runtime, url, why);
  CHECK(mode_of(file) == 0600);
}

TEST_CASE("a session goes back to its full handshake: a refresh keeps its time, and after an hour it is not offered") {
  RedisServerOptions options = tls_server();
  // Tickets of 12 s: past 6 s a resumed run stores the server's next ticket.
  options.extra_config = {"tls-session-cache-timeout 12"};
  RedisServer redis(options);
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::string file = first_run(runtime, url);
  const long now = static_cast<long>(std::time(nullptr));
  CHECK(std::abs(verified_at(read_file(file)) - now) <= 60);
  // Verified 50 minutes ago: still offered; the refreshed file keeps that time.
  write_file(file, with_verified_at(read_file(file), now - 3000), 0600);
  // Not a synchronisation: the wall clock has to pass half the ticket's lifetime.
  std::this_thread::sleep_for(7500ms);
  const RunResult refreshed = runtime.exec(url);
  INFO(refreshed.describe());
  CHECK(refreshed.exit_code == 0);
  CHECK(contains(refreshed.err, k_resumed));
  CHECK(contains(refreshed.err, "cached the TLS session"));
  CHECK(verified_at(read_file(file)) == now - 3000);
  // Verified more than an hour ago: a full, verified handshake, and a file of now.
  write_file(file, with_verified_at(read_file(file), now - 3700), 0600);
  check_ignored(runtime, url, "the server was verified");
  CHECK(std::abs(verified_at(read_file(file)) - now) <= 60);
}

TEST_CASE("a session cached for another endpoint is not offered, even to the same server") {
  RedisServer redis(tls_server());
  Runtime runtime;
  // The certificate names both localhost and 127.0.0.1: two keys, one server.
  const std::string by_name = redis.tls_url("localhost", cacert_query());
  const std::string by_ip = redis.tls_url("127.0.0.1", cacert_query());
  const std::string name_file = first_run(runtime, by_name);
  const RunResult ip_run = runtime.exec(by_ip);
  INFO(ip_run.describe());
  REQUIRE(ip_run.exit_code == 0);
  CHECK_FALSE(contains(ip_run.err, k_resumed));
  REQUIRE(runtime.files().size() == 2);
  const std::string ip_file = runtime.files()[0] == name_file ? runtime.files()[1] : runtime.files()[0];
  // The localhost session under the 127.0.0.1 key's name.
  write_file(ip_file, read_file(name_file), 0600);
  check_ignored(runtime, by_ip, "stored for another endpoint");
}

TEST_CASE("a corrupted resumption secret with a valid checksum: the server aborts, rlock retries once in full") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::string file = first_run(runtime, url);
  SessionFile session(read_file(file));
  const auto [at, size] = session.master_key();
  REQUIRE(size >= 32);
  session.der[at + size / 2] = static_cast<char>(session.der[at + size / 2] ^ 0x01);
  write_file(file, session.with_checksum(), 0600);
  const RunResult run = runtime.exec(url);
  INFO(run.describe());
  CHECK(run.exit_code == 0);
  CHECK(contains(run.err, "offering a cached session failed"));
  CHECK(contains(run.err, "retrying with a full handshake"));
  CHECK_FALSE(contains(run.err, k_resumed));
  CHECK(contains(run.err, "cached the TLS session"));
  const RunResult again = runtime.exec(url);
  INFO(again.describe());
  CHECK(again.exit_code == 0);
  CHECK(contains(again.err, k_resumed));
}

TEST_CASE("a changed server certificate is verified: another host's is refused (78), a valid new one is taken") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::string file = first_run(runtime, url);
  const RunResult resumed = runtime.exec(url);
  INFO(resumed.describe());
  REQUIRE(contains(resumed.err, k_resumed));
  redis.stop();
  SUBCASE("another host's certificate, by the same CA") {
    redis.options().tls_cert = tls_cert("other.crt");
    redis.options().tls_key = tls_cert("other.key");
    redis.start();
    REQUIRE(file_exists(file));
    const RunResult run = runtime.exec(url);
    INFO(run.describe());
    CHECK(run.exit_code == 78);
    CHECK(contains(run.err, "hostname mismatch"));
    CHECK(contains(run.err, "expected name 'localhost'"));
    CHECK_FALSE(contains(run.err, k_resumed));
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
  SUBCASE("a new valid certificate (chained through an intermediate)") {
    redis.options().tls_cert = tls_cert("chain.crt");
    redis.options().tls_key = tls_cert("chain-leaf.key");
    redis.start();
    const RunResult run = runtime.exec(url);
    INFO(run.describe());
    CHECK(run.exit_code == 0);
    CHECK(contains(run.err, "TLS session not resumed"));
    CHECK(contains(run.err, "cached the TLS session"));
    const RunResult again = runtime.exec(url);
    INFO(again.describe());
    CHECK(contains(again.err, k_resumed));
  }
}

// The server no longer verifies: refused (78) with the cache off and on, never resumed.
void check_refused_with_and_without_cache(Runtime& runtime, const std::string& url) {
  for (const std::string cache : {"no", "yes"}) {
    const RunResult run = runtime.exec(url, {"--tls-session-cache", cache});
    INFO(run.describe());
    CHECK(run.exit_code == 78);
    CHECK(contains(run.err, "failed verification"));
    CHECK_FALSE(contains(run.err, k_resumed));
  }
}

TEST_CASE("a CA file replaced under a running exec: its reconnection verified with the old CAs is not cached for "
          "the new ones") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string ca = runtime.dir.file("ca.crt");
  write_file(ca, read_file(tls_cert("ca.crt")));
  const std::string url = redis.tls_url("localhost", "?cacert=" + ca);
  const std::string go = runtime.dir.file("go");
  BackgroundOptions options;
  options.env = {"XDG_RUNTIME_DIR=" + runtime.dir.path()};
  BackgroundProcess job({rlock_bin(), "-v", "--url", url, "exec", "job", "--ttl", "3s", "--", "sh", "-c",
                         "while [ ! -e " + go + " ]; do sleep 0.1; done"},
                        options);
  // The lock held, the session cached (kill the connection earlier and the acquisition fails).
  REQUIRE(wait_until([&] { return contains(job.err(), "started pid"); }, 30s));
  REQUIRE(contains(job.err(), "cached the TLS session"));
  // The CA file now holds another CA, which did not sign the server's certificate.
  write_file(ca + ".new", read_file(tls_cert("foreign-ca.crt")));
  REQUIRE(::rename((ca + ".new").c_str(), ca.c_str()) == 0);
  const auto connections = [&job] {
    const std::string err = job.err();
    std::size_t count = 0;
    for (std::size_t at = err.find("connected to"); at != std::string::npos; at = err.find("connected to", at + 1))
      ++count;
    return count;
  };
  const std::size_t before = connections();
  redis.command({"CLIENT", "KILL", "TYPE", "normal"});
  // The renewal reconnects: a full handshake, verified with the CAs the run loaded.
  REQUIRE(wait_until([&] { return connections() > before; }, 30s));
  write_file(go, "");
  const int status = job.wait();
  INFO(job.err());
  REQUIRE(status == 0);
  // A new run with the new CA file must refuse the server, as it does without the cache.
  check_refused_with_and_without_cache(runtime, url);
}

TEST_CASE("a CA file rewritten in place inside --cacertdir makes another key: the server is verified again") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string cadir = runtime.dir.file("cadir");
  REQUIRE(::mkdir(cadir.c_str(), 0755) == 0);
  write_file(cadir + "/ca.pem", read_file(tls_cert("ca.crt")));
  REQUIRE(run_program({"openssl", "rehash", cadir}).exit_code == 0);
  const std::string url = redis.tls_url("localhost", "?cacertdir=" + cadir);
  first_run(runtime, url);
  const RunResult resumed = runtime.exec(url);
  INFO(resumed.describe());
  REQUIRE(contains(resumed.err, k_resumed));
  // Another CA written over the file (same inode; the directory itself unchanged): the hash
  // link now leads to a CA that did not sign the server's certificate.
  write_file(cadir + "/ca.pem", read_file(tls_cert("foreign-ca.crt")));
  check_refused_with_and_without_cache(runtime, url);
}

TEST_CASE("an unsafe cache directory gets no file: open to group or others, a symbolic link") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  std::string checked; // the directory where no file may appear
  std::string why;
  SUBCASE("mode 0777") {
    REQUIRE(::mkdir(runtime.cache.c_str(), 0700) == 0);
    REQUIRE(::chmod(runtime.cache.c_str(), 0777) == 0);
    checked = runtime.cache;
    why = "open to group or others";
  }
  SUBCASE("mode 0750") {
    REQUIRE(::mkdir(runtime.cache.c_str(), 0700) == 0);
    REQUIRE(::chmod(runtime.cache.c_str(), 0750) == 0);
    checked = runtime.cache;
    why = "open to group or others";
  }
  SUBCASE("a symbolic link to a private directory") {
    checked = runtime.dir.file("elsewhere");
    REQUIRE(::mkdir(checked.c_str(), 0700) == 0);
    REQUIRE(::symlink(checked.c_str(), runtime.cache.c_str()) == 0);
    why = "a symbolic link";
  }
  for (int run = 0; run < 2; ++run) {
    const RunResult result = runtime.exec(url);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.err, "no TLS session cache"));
    CHECK(contains(result.err, why));
    CHECK_FALSE(contains(result.err, k_resumed));
  }
  CHECK(Runtime::session_files(checked).empty());
  CHECK(fs::is_empty(checked));
}

TEST_CASE("no XDG_RUNTIME_DIR: no cache") {
  RedisServer redis(tls_server());
  RunOptions options;
  options.unset_env = {"XDG_RUNTIME_DIR"};
  const RunResult result =
      run_rlock({"-v", "--url", redis.tls_url("localhost", cacert_query()), "exec", "job", "--", "true"}, options);
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(contains(result.err, "no TLS session cache: XDG_RUNTIME_DIR is not set"));
}

TEST_CASE("a session of --tls-verify none is never offered to a verified run, nor the reverse") {
  RedisServer redis(tls_server());
  Runtime runtime;
  const std::string url = redis.tls_url("localhost", cacert_query());
  const std::vector<std::string> none{"--tls-verify", "none"};
  std::vector<std::vector<std::string>> order;
  SUBCASE("verified first") { order = {{}, none}; }
  SUBCASE("unverified first") { order = {none, {}}; }
  for (const auto& extra : order) {
    const RunResult first = runtime.exec(url, extra);
    INFO(first.describe());
    CHECK(first.exit_code == 0);
    CHECK_FALSE(contains(first.err, k_resumed));
    CHECK(contains(first.err, "cached the TLS session"));
  }
  CHECK(runtime.files().size() == 2);
  for (const auto& extra : order) {
    const RunResult again = runtime.exec(url, extra);
    INFO(again.describe());
    CHECK(again.exit_code == 0);
    CHECK(contains(again.err, k_resumed));
  }
}

} // namespace rlock::test
