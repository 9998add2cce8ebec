#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server's work per critical section (issue 15): Redis commands per `rlock exec k -- true`,
# counting every command the server ran, those inside the Lua scripts included (INFO
# commandstats diffed around the run; INFO itself not counted), by command name and in total.
#   uncontended  N runs of `rlock exec k -- true`, one after the other
#   contended    W shell loops running `rlock exec k -- true` on one lock for a few seconds;
#                the commands of the whole window divided by the critical sections run in it
# With --rlock2, that binary is measured the same way beside it (before/after).
# BENCH_COMMANDS_RUNS (default 200) and BENCH_COMMANDS_WORKERS (default 8) change N and W.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

runs=${BENCH_COMMANDS_RUNS:-200}
workers=${BENCH_COMMANDS_WORKERS:-8}
seconds=5
((BENCH_QUICK)) && { runs=${BENCH_COMMANDS_RUNS:-50}; seconds=2; }
work=$BENCH_DIR/work/commands
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")

# snapshot FILE: "name calls" for every command INFO commandstats lists, INFO excluded.
snapshot() {
  "${cli[@]}" info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { sub(/^cmdstat_/, "", $1); print $1, $3 }' >"$1"
}

# per_section BEFORE AFTER SECTIONS OUT: the calls of each command between the two snapshots,
# divided by SECTIONS, as "name per_section" lines (and "total" last).
per_section() {
  awk -v n="$3" '
    FNR == NR { before[$1] = $2; next }
    { d = $2 - before[$1]; if (d > 0) { per[$1] = d / n; total += d } }
    END {
      for (c in per) printf "%s %.2f\n", c, per[c]
      printf "total %.2f\n", total / n
    }' "$1" "$2" | sort >"$4"
}

# uncontended LABEL BINARY
uncontended() {
  local label=$1 bin=$2 name="bench-cmd-u-$1" i
  # A first run loads the scripts (a NOSCRIPT fallback costs an EVAL once per server).
  "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- true
  snapshot "$work/$label.u.before"
  for ((i = 0; i < runs; ++i)); do
    "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- true || bench_die "$label: rlock exec failed"
  done
  snapshot "$work/$label.u.after"
  per_section "$work/$label.u.before" "$work/$label.u.after" "$runs" "$work/$label.u"
}

# contended LABEL BINARY: W loops for the window; every exec started runs to its end before
# the second snapshot, so the window's commands all belong to counted sections (failures are
# reported, and their commands counted, never their sections).
contended() {
  local label=$1 bin=$2 name="bench-cmd-c-$1" dir=$work/$1.loops pids=() i pid
  rm -rf "$dir"
  mkdir -p "$dir"
  "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- true
  snapshot "$work/$label.c.before"
  for ((i = 0; i < workers; ++i)); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    bench_spawn bash -c 'n=0; while [[ ! -e $1/stop ]]; do "${@:3}" >/dev/null 2>>"$1/err" && n=$((n + 1)); done; echo "$n" >"$1/count.$2"' \
      loop "$dir" "$i" "$bin" --url "$REDIS_URL_BENCH" exec "$name" -- true
    pids+=("$BENCH_LAST_PID")
  done
  sleep "$seconds"
  : >"$dir/stop"
  for pid in "${pids[@]}"; do
    wait "$pid" || true
    bench_stop "$pid"
  done
  snapshot "$work/$label.c.after"
  local sections
  sections=$(cat "$dir"/count.* | awk '{ n += $1 } END { print n + 0 }')
  ((sections > 0)) || bench_die "$label: no critical section ran ($(head -3 "$dir/err"))"
  [[ ! -s $dir/err ]] || bench_log "bench: $label: some contended runs failed: $(head -3 "$dir/err")"
  echo "$sections" >"$work/$label.c.sections"
  per_section "$work/$label.c.before" "$work/$label.c.after" "$sections" "$work/$label.c"
}

labels=(rlock)
bins=("$RLOCK")
if [[ -n $RLOCK2 ]]; then
  labels+=(rlock2)
  bins+=("$RLOCK2")
fi
for i in "${!labels[@]}"; do
  uncontended "${labels[$i]}" "${bins[$i]}"
  contended "${labels[$i]}" "${bins[$i]}"
done

bench_section "Redis commands per critical section (INFO commandstats, scripts' commands included)"
echo "uncontended: $runs runs one after the other; contended: $workers loops for ${seconds}s" \
  "(load average $(cut -d' ' -f1-3 /proc/loadavg))"
header="command"
files=()
for label in "${labels[@]}"; do
  header+="|$label uncontended|$label $workers contenders"
  files+=("$work/$label.u" "$work/$label.c")
done
{
  echo "$header"
  # One row per command any run used, total last; '-' where a run never ran it.
  cat "${files[@]}" | awk '$1 != "total" { print $1 }' | sort -u | while read -r command; do
    row=$command
    for f in "${files[@]}"; do row+="|$(awk -v c="$command" '$1 == c { v = $2 } END { print (v == "" ? "-" : v) }' "$f")"; done
    echo "$row"
  done
  row="total"
  for f in "${files[@]}"; do row+="|$(awk '$1 == "total" { print $2 }' "$f")"; done
  echo "$row"
  row="(sections)"
  for label in "${labels[@]}"; do row+="|$runs|$(cat "$work/$label.c.sections")"; done
  echo "$row"
} | column -t -s'|'
for label in "${labels[@]}"; do
  bench_result "commands.$label.uncontended" "$(awk '$1 == "total" { print $2 }' "$work/$label.u")"
  bench_result "commands.$label.contended" "$(awk '$1 == "total" { print $2 }' "$work/$label.c")"
done
