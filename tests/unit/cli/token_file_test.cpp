// SPDX-License-Identifier: MIT
// Tests for writing and reading token files (cli/token_file): atomic, 0600, no symlinks.
#include "cli/token_file.hpp"

#include "cli_test_helpers.hpp"
#include "util/error.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using rlock::cli::read_token_file;
using rlock::cli::write_token_file;
using rlock::cli::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::size_t entries_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_CASE("write_token_file writes one line, mode 0600, the fence beside it, and read_token_file reads it back") {
  TempDir dir;
  std::string path = dir.file("token");
  write_token_file(path, "0123456789abcdef0123456789abcdef", 1795686894265118);
  CHECK(slurp(path) == "0123456789abcdef0123456789abcdef\n");
  CHECK(read_token_file(path) == "0123456789abcdef0123456789abcdef");
  CHECK(rlock::cli::fence_file_of(path) == path + ".fence");
  CHECK(slurp(path + ".fence") == "1795686894265118\n");

  for (const std::string& file : {path, path + ".fence"}) {
    struct stat info {};
    REQUIRE(::lstat(file.c_str(), &info) == 0);
    CHECK(S_ISREG(info.st_mode));
    CHECK((info.st_mode & 07777) == 0600);
  }
  CHECK(entries_in(dir.path()) == 2); // no temporary left behind
}

TEST_CASE("write_token_file replaces an existing file atomically") {
  TempDir dir;
  std::string path = dir.write("token", "old-token\n");
  ::chmod(path.c_str(), 0644);
  write_token_file(path, "new-token", 7);
  CHECK(read_token_file(path) == "new-token");
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600);
  CHECK(entries_in(dir.path()) == 2);
}

TEST_CASE("write_token_file refuses a symlink and leaves its target alone") {
  TempDir dir;
  std::string target = dir.write("victim", "precious\n");
  std::string link = dir.file("token");
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  try {
    write_token_file(link, "tok", 1);
    FAIL_CHECK("wrote through a symlink");
  } catch (const rlock::ConfigError& error) {
    CHECK(rlock::to_int(error.code()) == 78);
    CHECK(std::string(error.what()).find("symbolic link") != std::string::npos);
  }
  CHECK(slurp(target) == "precious\n");
  CHECK(fs::is_symlink(link));
  CHECK(entries_in(dir.path()) == 3); // the victim, the link, the fence written first

  std::string dangling = dir.file("dangling");
  REQUIRE(::symlink(dir.file("does-not-exist").c_str(), dangling.c_str()) == 0);
  CHECK_THROWS_AS(write_token_file(dangling, "tok", 1), rlock::ConfigError);
  CHECK_FALSE(fs::exists(dir.file("does-not-exist")));
}

TEST_CASE("write_token_file into a missing directory is a ConfigError") {
  TempDir dir;
  CHECK_THROWS_AS(write_token_file(dir.file("no/such/dir/token"), "tok", 1), rlock::ConfigError);
}

TEST_CASE("read_token_file: missing or empty files are ConfigErrors") {
  TempDir dir;
  CHECK_THROWS_AS((void)read_token_file(dir.file("missing")), rlock::ConfigError);
  CHECK_THROWS_AS((void)read_token_file(dir.write("empty", "")), rlock::ConfigError);
  CHECK(read_token_file(dir.write("by-hand", "tok\r\n")) == "tok");
}

TEST_CASE("write_token_file refuses a symlink at the fence's companion too") {
  TempDir dir;
  std::string target = dir.write("victim", "precious\n");
  std::string path = dir.file("token");
  REQUIRE(::symlink(target.c_str(), (path + ".fence").c_str()) == 0);
  CHECK_THROWS_AS(write_token_file(path, "tok", 1), rlock::ConfigError);
  CHECK(slurp(target) == "precious\n");
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("read_token_file refuses a symlink, as writing does") {
  TempDir dir;
  std::string target = dir.write("real", "tok\n");
  std::string link = dir.file("token");
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  try {
    (void)read_token_file(link);
    FAIL_CHECK("read through a symlink");
  } catch (const rlock::ConfigError& error) {
    CHECK(rlock::to_int(error.code()) == 78);
    CHECK(std::string(error.what()).find("symbolic link") != std::string::npos);
  }
}

TEST_CASE("token_variable and fence_variable: upper case, digits kept, everything else '_'") {
  using rlock::cli::fence_variable;
  using rlock::cli::token_variable;
  CHECK(token_variable("db-migrate") == "RLOCK_TOKEN_DB_MIGRATE");
  CHECK(token_variable("Deploy.prod/eu-1") == "RLOCK_TOKEN_DEPLOY_PROD_EU_1");
  CHECK(token_variable("x") == "RLOCK_TOKEN_X");
  CHECK(token_variable("caf\xc3\xa9 2") == "RLOCK_TOKEN_CAF___2");
  CHECK(fence_variable("db-migrate") == "RLOCK_FENCE_DB_MIGRATE");
}
