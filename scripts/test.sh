#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, part two: install, build with warnings as errors, and run every test (unit and
# integration; the integration tests start their own redis-server on free loopback ports).
# `scripts/test.sh --slow` runs only the slow tier instead (ctest label "slow": the Sentinel
# and Cluster tests of tests/slow/, each starting its own topology; a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
tier=(-LE slow)
if [ "${1:-}" = --slow ]; then
  tier=(-L slow)
  shift
fi
scripts/install-deps.sh
scripts/build.sh -DRLOCK_WERROR=ON "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "${tier[@]}"
