// SPDX-License-Identifier: MIT
// Tests for shell quoting, JSON escaping, printable(), to_hex, parse_int and edit_distance
// (util/strings).
#include "util/strings.hpp"

#include <array>
#include <cstdio>
#include <doctest/doctest.h>
#include <limits>
#include <string>
#include <vector>

using namespace std::string_literals;
using rlock::edit_distance;
using rlock::json_escape;
using rlock::parse_int;
using rlock::printable;
using rlock::prometheus_escape;
using rlock::shell_join;
using rlock::shell_quote;

namespace {

// Runs `printf '%s\0' <joined>` through /bin/sh and splits what it prints on NULs: the words
// the shell saw after quote removal.
std::vector<std::string> words_seen_by_sh(const std::string& joined) {
  std::string command = "printf '%s\\0' " + joined;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  for (;;) {
    std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe);
    if (n == 0) break;
    output.append(buffer.data(), n);
  }
  int status = ::pclose(pipe);
  CHECK(status == 0);
  std::vector<std::string> words;
  std::size_t start = 0;
  for (std::size_t nul = output.find('\0'); nul != std::string::npos; nul = output.find('\0', start)) {
    words.push_back(output.substr(start, nul - start));
    start = nul + 1;
  }
  CHECK(start == output.size());
  return words;
}

} // namespace

TEST_CASE("shell_quote leaves safe words alone and single-quotes the rest") {
  CHECK(shell_quote("backup.sh") == "backup.sh");
  CHECK(shell_quote("/usr/bin/rsync") == "/usr/bin/rsync");
  CHECK(shell_quote("--opt=a,b+c@d:e%f") == "--opt=a,b+c@d:e%f");
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("$HOME") == "'$HOME'");
  CHECK(shell_quote("~") == "'~'");
  CHECK(shell_quote("*") == "'*'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("'") == "''\\'''");
}

TEST_CASE("shell_join joins with single spaces") {
  CHECK(shell_join({}) == "");
  CHECK(shell_join({"ls"}) == "ls");
  CHECK(shell_join({"ls", "-l", "my file"}) == "ls -l 'my file'");
  CHECK(shell_join({"echo", ""}) == "echo ''");
}

TEST_CASE("shell_join round-trips through /bin/sh") {
  std::vector<std::string> argv = {
      "plain",   "",          "two words", "it's",  "'",        "''",       "\"",          "\\",       "\\'",
      "$HOME",   "${PATH}",   "$(id)",     "`id`",  "*",        "?",        "[a]",         "~",        "~root",
      "a;b",     "a&&b",      "a|b",       "a>b",   "<",        "#comment", "!",           "{a,b}",    "a=b",
      "--x=y z", "tab\there", "new\nline", "\r",    "\x1b[31m", "\x7f",     "caf\xc3\xa9", "\xff\xfe", "   ",
      "-n",      "%s",        "%%",        "a\\nb",
  };
  CHECK(words_seen_by_sh(shell_join(argv)) == argv);
  for (const auto& arg : argv) {
    CAPTURE(arg);
    CHECK(words_seen_by_sh(shell_quote(arg)) == std::vector<std::string>{arg});
  }
}

TEST_CASE("prometheus_escape escapes backslash, double quote and newline, and keeps the text UTF-8") {
  CHECK(prometheus_escape("backup") == "backup");
  CHECK(prometheus_escape("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(prometheus_escape("C:\\dir") == "C:\\\\dir");
  CHECK(prometheus_escape("a\nb") == "a\\nb");
  CHECK(prometheus_escape("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(prometheus_escape("bad\xff") == "bad\xef\xbf\xbd"); // not UTF-8: U+FFFD
}

TEST_CASE("json_escape escapes quotes, backslashes and control characters") {
  CHECK(json_escape("plain") == "plain");
  CHECK(json_escape("") == "");
  CHECK(json_escape("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(json_escape("C:\\dir") == "C:\\\\dir");
  CHECK(json_escape("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(json_escape("\x01") == "\\u0001");
  CHECK(json_escape("\b\f") == "\\u0008\\u000c");
  CHECK(json_escape("\x1b[0m") == "\\u001b[0m");
  CHECK(json_escape("\x1f") == "\\u001f");
  CHECK(json_escape("\x7f") == "\\u007f");
  CHECK(json_escape("a\0b"s) == "a\\u0000b");
  CHECK(json_escape("/") == "/");
  CHECK(json_escape("caf\xc3\xa9 \xe6\x97\xa5") == "caf\xc3\xa9 \xe6\x97\xa5"); // UTF-8 passes through
}

TEST_CASE("json_escape turns bytes that are not UTF-8 into U+FFFD, so the output is valid JSON") {
  CHECK(json_escape("x\xffy") == "x\\ufffdy");
  CHECK(json_escape("\xc3") == "\\ufffd");                                  // truncated sequence
  CHECK(json_escape("\xc0\xaf") == "\\ufffd\\ufffd");                       // overlong form
  CHECK(json_escape("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");            // a surrogate
  CHECK(json_escape("\xf4\x90\x80\x80") == "\\ufffd\\ufffd\\ufffd\\ufffd"); // past U+10FFFF
  CHECK(json_escape("\xf0\x9f\x94\x92") == "\xf0\x9f\x94\x92");             // a 4-byte character passes
}

TEST_CASE("json_escape leaves no raw control character, quote or lone backslash") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string escaped = json_escape(all);
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    auto u = static_cast<unsigned char>(escaped[i]);
    CAPTURE(i);
    CHECK_FALSE((u < 0x20 || u == 0x7f));
    if (escaped[i] == '"') CHECK((i > 0 && escaped[i - 1] == '\\'));
    if (escaped[i] == '\\') {
      REQUIRE(i + 1 < escaped.size());
      char next = escaped[i + 1];
      CHECK(std::string("\"\\nrtu").find(next) != std::string::npos);
      ++i; // skip the escaped character
    }
  }
}

TEST_CASE("printable replaces control characters with '?'") {
  CHECK(printable("backup job") == "backup job");
  CHECK(printable("a\nb") == "a?b");
  CHECK(printable("\x1b[31mred") == "?[31mred");
  CHECK(printable("del\x7f") == "del?");
  CHECK(printable("nul\0here"s) == "nul?here");
  CHECK(printable("\t\r") == "??");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(printable("") == "");
}

TEST_CASE("to_hex renders lowercase pairs") {
  const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  CHECK(rlock::to_hex(bytes, sizeof bytes) == "00017f80abff");
  CHECK(rlock::to_hex(bytes, 0) == "");
  CHECK(rlock::to_hex(bytes + 4, 1) == "ab");
}

TEST_CASE("parse_int accepts whole decimal integers only") {
  std::int64_t value = -99;
  CHECK(parse_int("0", value));
  CHECK(value == 0);
  CHECK(parse_int("42", value));
  CHECK(value == 42);
  CHECK(parse_int("-7", value));
  CHECK(value == -7);
  CHECK(parse_int("007", value));
  CHECK(value == 7);
  CHECK(parse_int("9223372036854775807", value));
  CHECK(value == std::numeric_limits<std::int64_t>::max());
  CHECK(parse_int("-9223372036854775808", value));
  CHECK(value == std::numeric_limits<std::int64_t>::min());

  for (const char* bad : {"", " 1", "1 ", "+1", "1a", "a1", "0x10", "1.0", "1e3", "-", "--1", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999"}) {
    CAPTURE(bad);
    std::int64_t ignored = 0;
    CHECK_FALSE(parse_int(bad, ignored));
  }
  std::int64_t ignored = 0;
  CHECK_FALSE(parse_int("12\0"s, ignored));
}

TEST_CASE("edit_distance counts insertions, deletions, replacements and neighbour swaps") {
  CHECK(edit_distance("exec", "exec") == 0);
  CHECK(edit_distance("exce", "exec") == 1); // a swap
  CHECK(edit_distance("stauts", "status") == 1);
  CHECK(edit_distance("relase", "release") == 1);
  CHECK(edit_distance("renw", "renew") == 1);
  CHECK(edit_distance("", "help") == 4);
  CHECK(edit_distance("frobnicate", "exec") > 2);
  CHECK(edit_distance("acquire", "") == 7);
}
