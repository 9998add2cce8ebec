// SPDX-License-Identifier: MIT
// Reply readers shared by the Sentinel and Cluster fixtures.
#include "topology_support.hpp"

#include <fmt/format.h>

namespace rlock::test {

std::vector<std::string> split_reply(const std::string& reply) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (begin <= reply.size()) {
    const auto end = std::min(reply.find('\n', begin), reply.size());
    parts.push_back(reply.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

std::string info_field(const std::string& info, std::string_view field) {
  for (std::string line : split_reply(info)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':') {
      return line.substr(field.size() + 1);
    }
  }
  return {};
}

std::string role_of(const RedisServer& server) {
  if (!server.running()) return {};
  try {
    return split_reply(server.command({"ROLE"})).front();
  } catch (const SupportError&) {
    return {};
  }
}

std::vector<std::map<std::string, std::string>> reply_records(const std::string& reply, const std::string& first_key) {
  std::vector<std::map<std::string, std::string>> records;
  if (reply.empty()) return records;
  const auto parts = split_reply(reply);
  for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
    if (parts[i] == first_key || records.empty()) records.emplace_back();
    records.back()[parts[i]] = parts[i + 1];
  }
  return records;
}

std::string record_field(const std::map<std::string, std::string>& record, const std::string& key,
                         const std::string& otherwise) {
  const auto found = record.find(key);
  return found == record.end() ? otherwise : found->second;
}

std::string server_log_tail(const std::string& what, const RedisServer& server) {
  constexpr std::size_t k_tail = 4000;
  std::string log = server.log();
  if (log.size() > k_tail) log = "…" + log.substr(log.size() - k_tail);
  return fmt::format("== {} on {} ({}) ==\n{}\n", what, server.port(), server.running() ? "running" : "stopped", log);
}

} // namespace rlock::test
