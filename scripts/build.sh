#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds rlock in build/ (or $BUILD_DIR), with any extra CMake arguments given.
# BUILD_TARGET=rlock builds only that target (scripts/demo.sh); default: everything.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
