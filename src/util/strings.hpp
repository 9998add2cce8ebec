// SPDX-License-Identifier: MIT
// String helpers: quoting for shells and terminals, JSON escaping, hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlock {

// Single-quotes `text` for POSIX sh when it needs quoting ("it's" -> 'it'\''s').
std::string shell_quote(std::string_view text);

// Joins argv into one line a user could paste into a shell.
std::string shell_join(const std::vector<std::string>& argv);

// Escapes for a JSON string literal (without the surrounding quotes); bytes that are not
// UTF-8 become U+FFFD, so the output is always valid JSON.
std::string json_escape(std::string_view text);

// Escapes for a label value of the Prometheus text exposition format (without the quotes):
// backslash, double quote and newline escaped, bytes that are not UTF-8 replaced by U+FFFD.
std::string prometheus_escape(std::string_view text);

// Replaces control characters with '?' so that a hostile name cannot drive the terminal.
std::string printable(std::string_view text);

std::string to_hex(const unsigned char* data, std::size_t size);

// Parses a whole decimal integer; false on any junk.
bool parse_int(std::string_view text, std::int64_t& value);

// How many single-byte edits turn `from` into `to`: insertions, deletions, replacements and
// swaps of two neighbours ("exce" is 1 from "exec"), for "did you mean …?".
std::size_t edit_distance(std::string_view from, std::string_view to);

} // namespace rlock
