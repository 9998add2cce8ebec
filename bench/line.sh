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
#   handoff       p50/p90 of the gaps between one waiter's job ending and the next one's
#                 starting while the line drains (every hand-off with the rest still queued)
# BENCH_LINE_WAITERS and BENCH_LINE_WINDOW (seconds) change the defaults (200, 35).
# Issue 20's run before the line kept arrival order: 198 of 200 out of place, 0.067/s.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

waiters=200 window=35
((BENCH_QUICK)) && waiters=40
waiters=${BENCH_LINE_WAITERS:-$waiters}
window=${BENCH_LINE_WINDOW:-$window}
tool=$BENCH_DIR/bin/benchtool
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

# run_line LABEL BINARY: each waiter's job is `benchtool hold FILE`, which notes when it
# started and ended (CLOCK_MONOTONIC) in its own file: sorted by start, they give the order of
# service, and the gaps between them the hand-offs.
run_line() {
  local label=$1 bin=$2 name="bench-line-$1-$window" sections="$work/sections-$1-$window"
  rm -rf "$sections"
  mkdir -p "$sections"
  bench_spawn "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- sleep 3600
  local holder=$BENCH_LAST_PID
  bench_wait_for 10 "$bin" --url "$REDIS_URL_BENCH" status "$name" -q || bench_die "$label: the holder did not take the lock"
  local pids=() i
  for ((i = 0; i < waiters; ++i)); do
    bench_spawn "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- "$tool" hold "$sections/$i"
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
  ran() { find "$sections" -type f | wc -l; }
  served() { [[ $(ran) -ge $waiters ]]; }
  bench_wait_for 120 served || bench_log "bench: $label: only $(ran) of $waiters waiters ran"
  t1=$(date +%s%N)
  for pid in "${pids[@]}"; do bench_stop "$pid"; done
  local misplaced handoff p50 p90
  # The waiters' numbers in the order their jobs started; out of place: not at its arrival's.
  misplaced=$(for f in "$sections"/*; do printf '%s %s\n' "$(cut -d' ' -f1 "$f")" "${f##*/}"; done |
    sort -n | awk '$2 != NR - 1 { n++ } END { print n + 0 }')
  handoff=$(cat "$sections"/* | "$tool" handoff /dev/stdin) || bench_log "bench: $label: two jobs overlapped"
  p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$handoff")
  p90=$(sed -n 's/.*p90_ms=\([0-9.]*\).*/\1/p' <<<"$handoff")
  printf '%-8s waiters=%d window=%ss out_of_place=%d requests=%s/s commands=%s/s (per waiter) drain=%.2fs handoff_p50=%sms p90=%sms\n' \
    "$label" "$waiters" "$window" "$misplaced" "$rate" "$commands" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')" "$p50" "$p90"
  bench_result "line.$label.out_of_place" "$misplaced"
  bench_result "line.$label.requests_per_waiter" "$rate"
  bench_result "line.$label.$window.out_of_place" "$misplaced"
  bench_result "line.$label.$window.requests_per_waiter" "$rate"
  bench_result "line.$label.$window.commands_per_waiter" "$commands"
  bench_result "line.$label.$window.handoff.p50" "$p50"
  bench_result "line.$label.$window.handoff.p90" "$p90"
}

bench_section "waiting line: $waiters waiters behind a holder for ${window}s, then handed down the line"
run_line rlock "$RLOCK"
[[ -z $RLOCK2 ]] || run_line rlock2 "$RLOCK2"
