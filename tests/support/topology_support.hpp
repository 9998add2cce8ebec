// SPDX-License-Identifier: MIT
// Reading the replies the Sentinel and Cluster fixtures wait on: INFO fields, ROLE, the
// key/value records of SENTINEL replicas, and log tails for failure messages.
#pragma once

#include "redis_server.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::test {

// redis_command()'s text split at '\n' (an array's elements; nested arrays come flattened).
std::vector<std::string> split_reply(const std::string& reply);
// `field:value` of an INFO or CLUSTER INFO reply; empty when absent.
std::string info_field(const std::string& info, std::string_view field);
// ROLE's first element ("master", "slave", "sentinel"); empty when the server does not answer.
std::string role_of(const RedisServer& server);
// A flattened array of flat key/value arrays (SENTINEL replicas, SENTINEL sentinels), cut into
// one map per record where `first_key` starts one.
std::vector<std::map<std::string, std::string>> reply_records(const std::string& reply, const std::string& first_key);
std::string record_field(const std::map<std::string, std::string>& record, const std::string& key,
                         const std::string& otherwise = {});
// "== WHAT on PORT ==" and the last few kilobytes of its log.
std::string server_log_tail(const std::string& what, const RedisServer& server);

} // namespace rlock::test
