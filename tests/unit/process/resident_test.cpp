// SPDX-License-Identifier: MIT
// Tests for shedding the executable's start-up pages.
#include "process/resident.hpp"

#include <doctest/doctest.h>
#include <fstream>
#include <string>

using namespace rlock::process;

namespace {

// A field of /proc/self/status in KiB (RssFile: the resident pages mapped from files).
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

int answer(int x) { return x * 6 + 0; }

} // namespace

TEST_CASE("shed_startup_pages unmaps the executable's touched read-only pages and keeps it running") {
  const long before = status_kib("RssFile");
  REQUIRE(before > 0);
  const unsigned long shed = shed_startup_pages();
  const long after = status_kib("RssFile");
  CHECK(shed > 0);
  // The test binary has touched far more than the few pages reading /proc faults back in.
  CHECK(after < before);
  // Code and constant data come back from the page cache as they are used.
  CHECK(answer(7) == 42);
  CHECK(std::string("still here") == "still here");
  // Writable data is untouched: a static keeps its value across the call.
  static int counter = 41;
  ++counter;
  shed_startup_pages();
  CHECK(counter == 42);
}
