#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Semaphores (issue 18): 8 contender loops each run
# `rlock exec bench-sem --limit 4 -- benchtool hold FILE 5` for a fixed time, beside one loop
# running the mutex `rlock exec bench-mutex -- benchtool hold FILE 5` in the same window (same
# server, same machine load). Prints acquisitions/s of both and their ratio (the lone mutex
# worker pays rlock's whole start between its jobs, a waiter pays it while it waits: the ratio
# can exceed 4), the share of time the permits spend running jobs, the semaphore's hand-off latency (from a job's end to the start of the job that
# took the permit it freed: `benchtool permits`), the per-worker spread (min/mean, max/mean;
# target within +-10%), and the most jobs seen running at once (must be <= 4).
# BENCH_SEM_LIMIT and BENCH_SEM_WORKERS change the 4 and the 8.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

seconds=5 hold_ms=5
((BENCH_QUICK)) && seconds=2
limit=${BENCH_SEM_LIMIT:-4}
workers=${BENCH_SEM_WORKERS:-8}

work=$BENCH_DIR/work/semaphore
tool=$BENCH_DIR/bin/benchtool
rm -rf "$work"
mkdir -p "$work"

# spawn_loop FILE CMD-PREFIX...: runs CMD-PREFIX benchtool hold FILE MS until $work/stop exists;
# a failed rlock is counted in FILE.fail, its stderr kept in FILE.err.
spawn_loop() {
  local file=$1
  shift
  # shellcheck disable=SC2016 # expanded by the inner bash
  bench_spawn bash -c 'f=0; while [[ ! -e $1/stop ]]; do "${@:5}" "$2" hold "$3" "$4" >/dev/null 2>>"$3.err" || f=$((f + 1)); done; echo "$f" >"$3.fail"' \
    loop "$work" "$tool" "$file" "$hold_ms" "$@"
  pids+=("$BENCH_LAST_PID")
}

bench_section "semaphore: $workers workers on --limit $limit beside 1 worker on a mutex, jobs holding ${hold_ms} ms, ${seconds}s (load $(cut -d' ' -f1-3 /proc/loadavg))"
pids=()
start=$(date +%s%N)
for ((i = 0; i < workers; ++i)); do
  : >"$work/sem.$i"
  spawn_loop "$work/sem.$i" "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-sem --limit "$limit" --
done
: >"$work/mutex"
spawn_loop "$work/mutex" "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-mutex --
sleep "$seconds"
: >"$work/stop"
for pid in "${pids[@]}"; do
  wait "$pid" || true
  bench_stop "$pid"
done
end=$(date +%s%N)
ns=$((end - start))

failures=$(cat "$work"/*.fail 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
((failures == 0)) || echo "warning: $failures rlock runs failed (see $work/*.err)" >&2

sem_files=()
for ((i = 0; i < workers; ++i)); do sem_files+=("$work/sem.$i"); done
sem_ok=1
sem=$("$tool" permits "$limit" "${sem_files[@]}") || sem_ok=0
mutex=$("$tool" handoff "$work/mutex") || echo "error: mutex: two jobs overlapped: mutual exclusion broken" >&2
field() { sed -n "s|.* $1=\([0-9.]*\).*|\1|p" <<<" $2"; }

sem_n=$(field sections "$sem")
mutex_n=$(wc -l <"$work/mutex")
sem_rate=$(awk -v n="$sem_n" -v ns="$ns" 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
mutex_rate=$(awk -v n="$mutex_n" -v ns="$ns" 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
ratio=$(awk -v a="$sem_rate" -v b="$mutex_rate" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
most=$(field max_concurrent "$sem")
spread_lo=$(field min/mean "$sem")
spread_hi=$(field max/mean "$sem")

printf '%-22s acquisitions=%d per_s=%s\n' "mutex (1 worker)" "$mutex_n" "$mutex_rate"
busy=$(awk -v r="$sem_rate" -v h="$hold_ms" -v l="$limit" 'BEGIN { printf "%.0f", 100 * r * h / 1000 / l }')
printf '%-22s acquisitions=%d per_s=%s (%sx the mutex; permits busy with %d ms jobs %s%% of the time)\n' \
  "semaphore ($workers on $limit)" "$sem_n" "$sem_rate" "$ratio" "$hold_ms" "$busy"
printf '%-22s %s\n' "semaphore detail" "$sem"
printf '%-22s %s\n' "mutex between jobs" "$mutex"
spread=$(awk -v lo="$spread_lo" -v hi="$spread_hi" 'BEGIN { print (lo >= 0.90 && hi <= 1.10) ? "met" : "NOT met" }')
echo "per-worker spread: min/mean=$spread_lo max/mean=$spread_hi (target 0.90..1.10: $spread)"
if ((sem_ok == 0)) || [[ -z $most ]] || ((most > limit)); then
  echo "ERROR: semaphore: ${most:-?} jobs ran at once on --limit $limit: the limit was NOT kept" >&2
  echo "ERROR: semaphore: max concurrency ${most:-?} > $limit"
else
  echo "max concurrency: $most (limit $limit: kept)"
fi

bench_result semaphore.sem.per_s "$sem_rate"
bench_result semaphore.mutex.per_s "$mutex_rate"
bench_result semaphore.ratio "$ratio"
bench_result semaphore.busy "$busy"
bench_result semaphore.handoff.p50 "$(field p50_ms "$sem")"
bench_result semaphore.handoff.p90 "$(field p90_ms "$sem")"
bench_result semaphore.handoff.p99 "$(field p99_ms "$sem")"
bench_result semaphore.min "$spread_lo"
bench_result semaphore.max "$spread_hi"
bench_result semaphore.max_concurrent "$most"
bench_result semaphore.failures "$failures"
