// SPDX-License-Identifier: MIT
// Token files: where `acquire --token-file` leaves the token for a later `release`.
#pragma once

#include <string>

namespace rlock::cli {

// Writes `token` to `path` atomically (a 0600 temporary created with O_EXCL|O_NOFOLLOW beside
// it, then renamed over). A symlink at `path` is refused rather than followed or replaced.
// Throws ConfigError saying what to do.
void write_token_file(const std::string& path, const std::string& token);

// Reads a token file written by write_token_file (or by hand): its first line.
std::string read_token_file(const std::string& path);

} // namespace rlock::cli
