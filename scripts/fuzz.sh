#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang and runs each for a while (default 20s each) on a
# copy of its seed corpus. Prints executions per target; fails on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRLOCK_FUZZ=ON \
  -DRLOCK_BUILD_TESTS=OFF -DRLOCK_BUILD_MAN=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_url fuzz_duration fuzz_name fuzz_reply fuzz_argv fuzz_config fuzz_holder >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in url duration name reply argv config holder; do
  mkdir -p "$work/$target"
  cp tests/fuzz/corpus/$target/* "$work/$target/"
  log="$work/$target.log"
  # Memory is limited as libFuzzer does by default: a parser that allocates what its input
  # merely announces (hiredis's reader sizing an array by its header) is a finding.
  if ! "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" \
       -max_len=4096 -rss_limit_mb=2048 -artifact_prefix="$build/" "$work/$target" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz_$target: FAILED" >&2
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
  echo "fuzz_$target: $runs executions in ${seconds}s, 0 crashes"
done
