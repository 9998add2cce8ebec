// SPDX-License-Identifier: MIT
// Token files: where `acquire --token-file` leaves the token for a later `release`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rlock::cli {

// Writes `token` to `path`, and the lease's fence to its companion `path`.fence, each
// atomically (a 0600 temporary created with O_EXCL|O_NOFOLLOW beside it, then renamed over);
// the companion first, so that whoever sees the token file finds the fence beside it. A
// symlink at either path is refused rather than followed or replaced. Throws ConfigError
// saying what to do.
void write_token_file(const std::string& path, const std::string& token, std::int64_t fence);

// The companion of a token file: where write_token_file puts the fence.
std::string fence_file_of(const std::string& token_path);

// Reads a token file written by write_token_file (or by hand): its first line. A symlink is
// refused, as when writing (ConfigError).
std::string read_token_file(const std::string& path);

// The environment variable that holds the token of lock `name` beside RLOCK_TOKEN, so that a
// script can hold several locks: RLOCK_TOKEN_ followed by the name with ASCII letters in upper
// case, digits kept, and every other byte as '_' ("db-migrate" -> RLOCK_TOKEN_DB_MIGRATE).
// Names that differ only in case or punctuation share a variable.
std::string token_variable(std::string_view name);

// The token the environment holds for lock `name`: $RLOCK_TOKEN_<NAME>, else $RLOCK_TOKEN;
// nullopt when neither is set. Throws UsageError when the first one set is empty.
std::optional<std::string> token_from_environment(std::string_view name);

// The same for the fence: RLOCK_FENCE_<NAME>.
std::string fence_variable(std::string_view name);

} // namespace rlock::cli
