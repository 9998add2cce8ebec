// SPDX-License-Identifier: MIT
// Durations as users type them: 250ms, 30s, 10m, 1h, 1h30m; a bare number is seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace rlock {

// Parses a non-negative duration. Throws UsageError naming `what` (the option) on bad input.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what = "duration");

// Renders a duration compactly for humans: "250ms", "12.3s", "4m05s", "2h01m".
std::string format_duration(std::chrono::milliseconds duration);

} // namespace rlock
