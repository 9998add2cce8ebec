#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hand-off latency: W processes loop `LOCK-TOOL k -- benchtool hold FILE 5`, so that when a
# holder's job ends there are always waiters blocked on the lock. Each job notes
# CLOCK_MONOTONIC when it starts and just before it exits; a hand-off is the gap from one
# job's end to the next job's start (release, wake, acquire, fork+exec). Also checks that no
# two jobs overlapped. flock (and etcdctl lock) run the same loop. BENCH_HANDOFF_WORKERS
# changes the number of workers (4; 2 keeps exactly one waiter queued at each hand-off).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

workers=${BENCH_HANDOFF_WORKERS:-4} per_worker=60 hold_ms=5
((BENCH_QUICK)) && per_worker=25
label=""
((workers == 4)) || label=".w$workers"

work=$BENCH_DIR/work/handoff
mkdir -p "$work"
tool=$BENCH_DIR/bin/benchtool

# run_loop NAME ITERATIONS CMD-PREFIX...: every worker runs CMD-PREFIX benchtool hold FILE MS.
run_loop() {
  local name=$1 iterations=$2
  shift 2
  local out=$work/$name.sections pids=() i
  : >"$out"
  for ((i = 0; i < workers; ++i)); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    bench_spawn bash -c 'for ((n = 0; n < $1; ++n)); do "${@:5}" "$2" hold "$3" "$4" >/dev/null 2>>"$3.err" || exit 1; done' \
      loop "$iterations" "$tool" "$out" "$hold_ms" "$@"
    pids+=("$BENCH_LAST_PID")
  done
  local failed=0 pid
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
    bench_stop "$pid"
  done
  ((failed == 0)) || echo "warning: a $name worker failed (see $out.err)" >&2
  local line
  line=$("$tool" handoff "$out") || echo "error: $name: two jobs overlapped: mutual exclusion broken" >&2
  printf '%-8s %s\n' "$name" "$line"
  for k in p50 p90 p99; do
    bench_result "handoff$label.$name.$k" "$(sed -n "s/.*${k}_ms=\([0-9.]*\).*/\1/p" <<<"$line")"
  done
}

bench_section "hand-off latency: $workers workers x $per_worker jobs holding ${hold_ms} ms (release -> next job starts)"
run_loop flock "$per_worker" flock "$work/flock.lock"
run_loop rlock "$per_worker" "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-h --
if [[ -n $ETCD_ENDPOINT ]]; then
  run_loop etcdctl $((per_worker / 3)) etcdctl --endpoints "$ETCD_ENDPOINT" lock bench-h
else
  echo "note: ${ETCD_MISSING:-etcd unavailable}"
fi
