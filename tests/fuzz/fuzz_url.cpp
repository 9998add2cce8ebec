// SPDX-License-Identifier: MIT
// libFuzzer target: Redis URL parsing must accept or reject any bytes without crashing.
#include "redis/url.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    rlock::redis::Endpoint endpoint = rlock::redis::parse_url(text);
    std::string shown = endpoint.redacted();
    // Redaction replaces the password, and the redacted URL still names the same server.
    if (endpoint.password && shown.find("***") == std::string::npos) __builtin_trap();
    bool simple = endpoint.user.find_first_of(":@%/?#[]") == std::string::npos &&
                  endpoint.path.find_first_of("?&%") == std::string::npos;
    if (simple) {
      rlock::redis::Endpoint again = rlock::redis::parse_url(shown);
      if (again.host != endpoint.host || again.port != endpoint.port || again.db != endpoint.db ||
          again.path != endpoint.path || again.tls.enabled != endpoint.tls.enabled || again.kind != endpoint.kind) {
        __builtin_trap();
      }
      if (endpoint.password && again.password != std::string("***")) __builtin_trap();
      // TLS query keys survive the round trip, in their canonical spelling.
      const auto& tls = endpoint.tls;
      if (again.tls.cacert != tls.cacert || again.tls.cacertdir != tls.cacertdir || again.tls.cert != tls.cert ||
          again.tls.key != tls.key || again.tls.server_name != tls.server_name || again.tls.verify != tls.verify) {
        __builtin_trap();
      }
    }
  } catch (const rlock::Error&) {
  }
  // As REDIS_URL: other clients' keys may be skipped, but what is parsed is parsed the same.
  try {
    std::vector<std::string> ignored;
    rlock::redis::Endpoint shared = rlock::redis::parse_url(text, rlock::redis::UrlOrigin::shared, &ignored);
    if (ignored.empty()) {
      rlock::redis::Endpoint own = rlock::redis::parse_url(text);
      if (own.host != shared.host || own.port != shared.port || own.tls.verify != shared.tls.verify) __builtin_trap();
    }
  } catch (const rlock::Error&) {
  }
  return 0;
}
