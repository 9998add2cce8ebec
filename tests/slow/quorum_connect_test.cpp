// SPDX-License-Identifier: MIT
// Connecting to a quorum of independent masters (rlock(1), QUORUM): every node is connected to,
// handshaken with and logged in to at once, so that nodes that do not answer cost the others
// one --node-timeout together, not one each.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"
#include "tls_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace rlock::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> via(const std::vector<std::string>& urls, const std::vector<std::string>& args) {
  std::vector<std::string> all;
  for (const auto& url : urls) {
    all.emplace_back("--url");
    all.push_back(url);
  }
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

} // namespace

TEST_CASE("quorum: three nodes that take the connection but never answer AUTH cost one --node-timeout together") {
  // A SIGSTOPped server still completes TCP connects (the kernel accepts them), so with a
  // password the login is what waits. One after the other, the three would cost 1 s each
  // before the acquire could go out: 3 s and more. At once, about 1 s.
  RedisServerOptions options;
  options.password = "quorum-secret";
  std::vector<std::unique_ptr<RedisServer>> nodes;
  std::vector<std::string> urls;
  for (int i = 0; i < 7; ++i) {
    nodes.push_back(std::make_unique<RedisServer>(options));
    urls.push_back(fmt::format("redis://:quorum-secret@127.0.0.1:{}", nodes.back()->port()));
  }
  for (std::size_t i = 0; i < 3; ++i) nodes[i]->pause();
  RunResult taken = run_rlock(via(urls, {"--node-timeout", "1s", "acquire", "c", "--lease", "--ttl", "60s"}));
  for (std::size_t i = 0; i < 3; ++i) nodes[i]->resume();
  CHECK_MESSAGE(taken.exit_code == 0, taken.describe());
  MESSAGE("acquire with 3 of 7 nodes stopped before login, --node-timeout 1s: ", taken.elapsed.count(), " ms");
  CHECK_MESSAGE(taken.elapsed < 2000ms, "took ", taken.elapsed.count(), " ms: the logins waited one after the other");

  // A wrong password is still refused as before, node by node: the others make the majority,
  // or the refusals are named in the 69 when they leave too few.
  for (std::size_t i = 0; i < 3; ++i) urls[i] = fmt::format("redis://:wrong@127.0.0.1:{}", nodes[i]->port());
  RunResult refused = run_rlock(via(urls, {"exec", "d", "--", "sh", "-c", "echo in job"}));
  CHECK_MESSAGE(refused.exit_code == 0, refused.describe()); // 4 of 7 nodes are a majority
  CHECK(trim(refused.out) == "in job");
  urls[3] = fmt::format("redis://:wrong@127.0.0.1:{}", nodes[3]->port());
  RunResult minority = run_rlock(via(urls, {"exec", "d", "--", "true"}));
  CHECK_MESSAGE(minority.exit_code == 69, minority.describe());
  check_error_line(minority);
  CHECK(minority.err.find("refused the credentials") != std::string::npos);
}

TEST_CASE("quorum over TLS: the handshakes run together and verify each node; a wrong CA fails them all") {
  RedisServerOptions options;
  options.tls_cert = tls_cert("server.crt");
  options.tls_key = tls_cert("server.key");
  options.tls_ca = tls_cert("ca.crt");
  std::vector<std::unique_ptr<RedisServer>> nodes;
  std::vector<std::string> good;
  std::vector<std::string> wrong_ca;
  for (std::size_t i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<RedisServer>(options));
    good.push_back(nodes.back()->tls_url("localhost", "?cacert=" + tls_cert("ca.crt")));
    wrong_ca.push_back(nodes.back()->tls_url("localhost", "?cacert=" + tls_cert("foreign-ca.crt")));
  }
  RunResult job = run_rlock(via(good, {"exec", "t", "--", "sh", "-c", "echo over tls"}));
  CHECK_MESSAGE(job.exit_code == 0, job.describe());
  CHECK(trim(job.out) == "over tls");
  // One node stopped mid-handshake (it takes the TCP connection, never answers the ClientHello)
  // costs the others nothing: 2 of 3 still make the majority.
  nodes[0]->pause();
  RunResult paused = run_rlock(via(good, {"exec", "t", "--node-timeout", "300ms", "--", "true"}));
  nodes[0]->resume();
  CHECK_MESSAGE(paused.exit_code == 0, paused.describe());

  RunResult refused = run_rlock(via(wrong_ca, {"exec", "t", "--", "true"}));
  CHECK_MESSAGE(refused.exit_code == 69, refused.describe());
  check_error_line(refused);
  CHECK_MESSAGE(refused.err.find("certificate") != std::string::npos, refused.describe());
}
