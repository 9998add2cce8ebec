// SPDX-License-Identifier: MIT
// Tests for the config file's syntax (cli/config_file): sections, comments, and what is refused.
#include "cli/config_file.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>

using rlock::cli::parse_config_file;

namespace {

// The message of the ConfigError that parsing `text` throws.
std::string error_of(const std::string& text) {
  try {
    (void)parse_config_file(text, "/etc/rlock/config");
    FAIL_CHECK("parsed: " << text);
  } catch (const rlock::ConfigError& error) {
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("config file: an empty file has only the unnamed section") {
  for (const char* text : {"", "\n\n", "# only a comment\n", "; another\n   \n\t\n"}) {
    CAPTURE(text);
    auto file = parse_config_file(text, "f");
    REQUIRE(file.sections.size() == 1);
    CHECK(file.defaults().entries.empty());
    CHECK(file.defaults().profile.empty());
    CHECK(file.profile_names().empty());
  }
}

TEST_CASE("config file: keys, values, sections and line numbers") {
  const auto file = parse_config_file("# rlock settings\n"
                                      "url = redis://db:6379/1\n"
                                      "  prefix=jobs:  \r\n"
                                      "\n"
                                      "[profile prod]\n"
                                      "url = redis://prod#not-a-comment\n"
                                      "io-timeout =\t2s\n"
                                      "[ profile  staging.eu-1 ]\n"
                                      "password-file = secrets/pw\n",
                                      "cfg");
  CHECK(file.path == "cfg");
  REQUIRE(file.sections.size() == 3);
  const auto& defaults = file.defaults();
  REQUIRE(defaults.entries.size() == 2);
  CHECK(defaults.entries[0].key == "url");
  CHECK(defaults.entries[0].value == "redis://db:6379/1");
  CHECK(defaults.entries[0].line == 2);
  CHECK(defaults.entries[1].key == "prefix");
  CHECK(defaults.entries[1].value == "jobs:");
  CHECK(defaults.entries[1].line == 3);

  const auto* prod = file.profile("prod");
  REQUIRE(prod != nullptr);
  CHECK(prod->line == 5);
  REQUIRE(prod->find("url") != nullptr);
  CHECK(prod->find("url")->value == "redis://prod#not-a-comment");
  CHECK(prod->find("io-timeout")->value == "2s");
  CHECK(prod->find("io-timeout")->line == 7);
  CHECK(prod->find("prefix") == nullptr);

  const auto* staging = file.profile("staging.eu-1");
  REQUIRE(staging != nullptr);
  CHECK(staging->find("password-file")->value == "secrets/pw");
  CHECK(file.profile("Prod") == nullptr);
  CHECK(file.profile("") == nullptr);
  CHECK(file.profile_names() == "prod, staging.eu-1");
}

TEST_CASE("config file: a value keeps '=' and inner spaces; the last line needs no newline") {
  const auto file = parse_config_file("password-file = /srv/my secrets/a=b", "f");
  REQUIRE(file.defaults().entries.size() == 1);
  CHECK(file.defaults().entries[0].value == "/srv/my secrets/a=b");
}

TEST_CASE("config file: malformed lines are ConfigErrors with FILE:LINE") {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"url redis://x\n", "/etc/rlock/config:1: expected 'key = value'"},
      {"\n\n= value\n", "/etc/rlock/config:3: a line starts with '='"},
      {"URL = redis://x\n", ":1: 'URL' is not a key"},
      {"my key = 1\n", ":1: 'my key' is not a key"},
      {"url =\n", ":1: 'url' has no value"},
      {"url =   \t\n", ":1: 'url' has no value"},
      {"[profile prod\n", ":1: a section header must end with ']'"},
      {"[prod]\n", ":1: unknown section [prod]"},
      {"[default]\n", "unknown section [default]"},
      {"[profile]\n", "unknown section [profile]"},
      {"[profileprod]\n", "unknown section [profileprod]"},
      {"[profile a/b]\n", "profile name 'a/b'"},
      {"[profile ]\n", "unknown section [profile]"},
      {"url = a\nurl = b\n", ":2: 'url' is set twice in this section (first at line 1)"},
      {"[profile p]\nx = 1\n[profile p]\n", ":3: profile 'p' is defined twice (first at line 1)"},
      {"url = a\x01b\n", ":1: control characters"},
      {"prefix = a\x7f\n", ":1: control characters"},
      {"ok = 1\r\nbad\rline = 2\n", ":2: control characters"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const std::string message = error_of(c.text);
    CHECK(message.find(c.says) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("config file: a NUL byte is refused, not a place where the text ends") {
  static constexpr char k_text[] = "url = redis://a\0\nprefix = x\n";
  const std::string text(k_text, sizeof k_text - 1);
  CHECK(error_of(text).find(":1: control characters") != std::string::npos);
}

TEST_CASE("config file: the same key in different sections is fine") {
  const auto file = parse_config_file("url = a\n[profile p]\nurl = b\n[profile q]\nurl = c\n", "f");
  CHECK(file.defaults().find("url")->value == "a");
  CHECK(file.profile("p")->find("url")->value == "b");
  CHECK(file.profile("q")->find("url")->value == "c");
}

TEST_CASE("config file: a hostile path is printed without control characters") {
  try {
    (void)parse_config_file("nonsense\n", "/tmp/\x1b[2Jevil");
    FAIL_CHECK("parsed");
  } catch (const rlock::ConfigError& error) {
    CHECK(std::string(error.what()).find('\x1b') == std::string::npos);
  }
}
