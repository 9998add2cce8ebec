#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis commands per second per idle waiter: one holder keeps a lock, W waiters block on it,
# and after they have settled the INFO commandstats deltas over a window are divided by W and
# by the window (INFO itself not counted; commands run inside scripts are counted). The
# redis-py anchor is W redis-py Lock(blocking=True) waiters, which poll SET NX every 0.1 s.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

waiters=8 window=6
((BENCH_QUICK)) && window=3
work=$BENCH_DIR/work/idle
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")

# Sum of calls over every command but INFO, from INFO commandstats.
total_calls() {
  "${cli[@]}" info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}

# measure NAME: prints and records the per-waiter rate over the window.
measure() {
  local name=$1 before after
  before=$(total_calls)
  sleep "$window"
  after=$(total_calls)
  local rate
  rate=$(awk -v d=$((after - before)) -v w="$waiters" -v s="$window" 'BEGIN { printf "%.2f", d / w / s }')
  printf '%-9s waiters=%d window=%ss commands=%d per_waiter_per_s=%s\n' "$name" "$waiters" "$window" \
    $((after - before)) "$rate"
  bench_result "idle.$name.per_waiter" "$rate"
}

bench_section "idle waiters: Redis commands/s per blocked waiter (INFO commandstats delta)"

# rlock: a holder whose job sleeps, W waiters queued behind it.
bench_spawn "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-idle -- sleep 600
holder=$BENCH_LAST_PID
bench_wait_for 10 "$RLOCK" --url "$REDIS_URL_BENCH" status bench-idle -q ||
  bench_die "the rlock holder did not take the lock"
pids=()
for ((i = 0; i < waiters; ++i)); do
  bench_spawn bash -c '"$@" 2>>"'"$work"'/rlock.err"' waiter "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-idle -- true
  pids+=("$BENCH_LAST_PID")
done
queued() { [[ $("${cli[@]}" zcard 'rlock:{bench-idle}:line') == "$waiters" ]]; }
bench_wait_for 15 queued || bench_die "the rlock waiters did not queue"
sleep 1
measure rlock
# Ending the holder hands the lock down the line; every waiter then runs `true` and exits.
bench_stop "$holder"
for pid in "${pids[@]}"; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  bench_stop "$pid"
done

if [[ -n $PYTHON ]]; then
  "${cli[@]}" set bench-idle-py someone-else px 600000 >/dev/null
  pids=()
  for ((i = 0; i < waiters; ++i)); do
    bench_spawn "$PYTHON" "$BENCH_SRC/anchors/redis-py-lock.py" "$REDIS_PORT" bench-idle-py --blocking true
    pids+=("$BENCH_LAST_PID")
  done
  clients() { (($("${cli[@]}" info clients | tr -d '\r' | sed -n 's/^connected_clients://p') > waiters)); }
  bench_wait_for 20 clients || true
  sleep 1
  measure redis-py
  for pid in "${pids[@]}"; do bench_stop "$pid"; done
  "${cli[@]}" del bench-idle-py >/dev/null
else
  echo "note: $PY_MISSING"
fi
echo "note: over longer windows, rlock's first two waiters also re-check once per holder lease (at most 30 s) and the others every 270 s or so (see WAITING in rlock(1))."
