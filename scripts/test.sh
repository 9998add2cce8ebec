#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, part two: install, build with warnings as errors, and run every test (unit and
# integration; the integration tests start their own redis-server on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DRLOCK_WERROR=ON "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
