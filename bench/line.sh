#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The waiting line at scale: W waiters queue one by one behind a holder (exec, default 30 s
# lease, renewed), wait there for a window longer than one lease, so that every waiter that
# re-checks by itself has done so at least once, then the holder ends and the lock is handed
# down the line. Prints, per rlock binary (--rlock, and --rlock2 beside it when given):
#   out_of_place  waiters served at another place than their arrival's (target 0)
#   requests      requests/s per idle waiter over the window: the EVALSHA, EVAL and BLPOP
#                 calls the clients sent (INFO commandstats delta; target <= 0.01)
#   commands      the same counting every command, those the scripts run included
#   drain         seconds from the holder's end until the last waiter's job ran
# Issue 20's run before the line kept arrival order: 198 of 200 out of place, 0.067/s.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

waiters=200 window=35
((BENCH_QUICK)) && waiters=40 window=35
work=$BENCH_DIR/work/line
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")

# Calls counted by INFO commandstats: every command but INFO ("all"), or only those a client
# sends itself ("requests": EVALSHA, EVAL, BLPOP; the commands scripts run count separately).
total_calls() {
  "${cli[@]}" info commandstats | tr -d '\r' | awk -F'[:=,]' -v only="$1" '
    /^cmdstat_/ && $1 != "cmdstat_info" {
      if (only == "all" || $1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" || $1 == "cmdstat_blpop") n += $3
    }
    END { print n + 0 }'
}

# Tickets in the line, whichever layout the binary uses (before: NAME:waiters; now: NAME:line).
queued() {
  local name=$1
  echo $(($("${cli[@]}" zcard "rlock:{$name}:line") + $("${cli[@]}" zcard "rlock:{$name}:waiters")))
}

# run_line LABEL BINARY
run_line() {
  local label=$1 bin=$2 name="bench-line-$1" order="$work/order-$1"
  : >"$order"
  bench_spawn "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- sleep 3600
  local holder=$BENCH_LAST_PID
  bench_wait_for 10 "$bin" --url "$REDIS_URL_BENCH" status "$name" -q || bench_die "$label: the holder did not take the lock"
  local pids=() i
  for ((i = 0; i < waiters; ++i)); do
    bench_spawn "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- sh -c "echo $i >> '$order'"
    pids+=("$BENCH_LAST_PID")
    local want=$((i + 1))
    arrived() { [[ $(queued "$name") -ge $want ]]; }
    bench_wait_for 10 arrived || bench_die "$label: waiter $i did not queue"
  done
  local before_req before_all after_req after_all
  before_req=$(total_calls requests)
  before_all=$(total_calls all)
  sleep "$window"
  after_req=$(total_calls requests)
  after_all=$(total_calls all)
  local rate commands
  rate=$(awk -v d=$((after_req - before_req)) -v w="$waiters" -v s="$window" 'BEGIN { printf "%.4f", d / w / s }')
  commands=$(awk -v d=$((after_all - before_all)) -v w="$waiters" -v s="$window" 'BEGIN { printf "%.4f", d / w / s }')
  local t0 t1
  t0=$(date +%s%N)
  bench_stop "$holder"
  served() { [[ $(wc -l <"$order") -ge $waiters ]]; }
  bench_wait_for 120 served || bench_log "bench: $label: only $(wc -l <"$order") of $waiters waiters ran"
  t1=$(date +%s%N)
  for pid in "${pids[@]}"; do bench_stop "$pid"; done
  local misplaced
  misplaced=$(awk '$1 != NR - 1 { n++ } END { print n + 0 }' "$order")
  printf '%-8s waiters=%d window=%ss out_of_place=%d requests=%s/s commands=%s/s (per waiter) drain=%.2fs\n' \
    "$label" "$waiters" "$window" "$misplaced" "$rate" "$commands" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')"
  bench_result "line.$label.out_of_place" "$misplaced"
  bench_result "line.$label.requests_per_waiter" "$rate"
}

bench_section "waiting line: $waiters waiters behind a holder for ${window}s, then handed down the line"
run_line rlock "$RLOCK"
[[ -z $RLOCK2 ]] || run_line rlock2 "$RLOCK2"
