// SPDX-License-Identifier: MIT
// Duration parsing and formatting.
#include "util/duration.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

namespace rlock {

namespace {

// Milliseconds per unit, or 0 when the suffix is not a unit.
double unit_ms(std::string_view unit) {
  if (unit == "ms") return 1.0;
  if (unit == "s") return 1000.0;
  if (unit == "m") return 60'000.0;
  if (unit == "h") return 3'600'000.0;
  if (unit == "d") return 86'400'000.0;
  return 0.0;
}

} // namespace

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what) {
  auto fail = [&]() -> UsageError {
    return UsageError(fmt::format("invalid {} '{}': use a number of seconds (2.5) or units "
                                  "such as 250ms, 30s, 10m, 1h30m",
                                  what, printable(text)));
  };
  if (text.empty()) throw fail();
  double total_ms = 0.0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t start = pos;
    bool seen_dot = false;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) != 0 || (text[pos] == '.' && !seen_dot))) {
      seen_dot = seen_dot || text[pos] == '.';
      ++pos;
    }
    std::string number(text.substr(start, pos - start));
    if (number.empty() || number == ".") throw fail();
    std::size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos])) != 0) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    double value = std::strtod(number.c_str(), nullptr);
    if (unit.empty()) {
      // A bare number is seconds, and only on its own ("1h30" is ambiguous).
      if (start != 0 || pos != text.size()) throw fail();
      total_ms = value * 1000.0;
      break;
    }
    double per = unit_ms(unit);
    if (per == 0.0) throw fail();
    total_ms += value * per;
  }
  // A century is beyond any lease or wait; more is surely a typo (and would overflow).
  constexpr double k_max_ms = 100.0 * 365 * 86'400'000.0;
  if (!std::isfinite(total_ms) || total_ms > k_max_ms) throw fail();
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::string format_duration(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  if (ms < 0) return "-" + format_duration(std::chrono::milliseconds(-ms));
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{}.{}s", ms / 1000, (ms % 1000) / 100);
  auto s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86'400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86'400, (s % 86'400) / 3600);
}

} // namespace rlock
