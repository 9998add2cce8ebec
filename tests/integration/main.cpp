// SPDX-License-Identifier: MIT
// doctest's main for each integration test program.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
