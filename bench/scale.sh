#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale (issue 20): what rlock costs when it is used a lot, against one private redis-server,
# with flock(1) beside it where it has a counterpart; then one table of every figure against
# its target.
#   bench/scale.sh [--rlock PATH] [--quick]
# About 5 minutes on a 2-CPU machine (--quick: about a minute, smaller counts, whose figures
# are not the targets' own). Parts, each also a script of its own:
#   jobs.sh        1,000 supervised jobs at once: RSS and PSS per supervisor beside flock's,
#                  Redis bytes per lock with and without the holder's connection, renewal load
#   line.sh        200 waiters released after 1 s and after 35 s (past one lease): out of place, idle load,
#                  hand-off p50/p90 while the line drains
#   handoff.sh     the hand-off with one waiter queued (2 workers), for the ratio to the line's
#   status.sh      `status` over 100,000 names beside the C scan floor; `status NAME` among them
#   keys.sh        bytes per held lock (MEMORY USAGE) and per waiting ticket
#   throughput.sh  16 concurrent clients on one name and on a name each, beside flock
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

started=$SECONDS
echo "rlock scale bench: $("$RLOCK" --version 2>/dev/null | head -1) ($RLOCK)"
echo "machine: $(nproc) CPUs, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $(redis-server --version | awk '{print $1, $2, $3}') on 127.0.0.1:$REDIS_PORT"

if ((BENCH_QUICK)); then
  export BENCH_STATUS_NAMES=${BENCH_STATUS_NAMES:-20000} BENCH_LINE_WAITERS=${BENCH_LINE_WAITERS:-40}
fi
part() {
  local t=$SECONDS
  env "$@" || echo "warning: $* failed" >&2
  echo "($(basename "${@: -1}") took $((SECONDS - t)) s)"
}
part "$BENCH_SRC/jobs.sh"
part BENCH_LINE_WINDOW=1 "$BENCH_SRC/line.sh"
part BENCH_LINE_WINDOW=35 "$BENCH_SRC/line.sh"
part BENCH_HANDOFF_WORKERS=2 "$BENCH_SRC/handoff.sh"
part "$BENCH_SRC/status.sh"
part "$BENCH_SRC/keys.sh"
part BENCH_CONTENDERS=16 "$BENCH_SRC/throughput.sh"
part BENCH_CONTENDERS=16 BENCH_DISTINCT=1 "$BENCH_SRC/throughput.sh"

get() { bench_get "$1"; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
# verdict VALUE OP LIMIT: "met" or "NOT met" (or "n/a" without a value).
verdict() {
  [[ -n $1 ]] || { echo "n/a"; return; }
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == "<=") ? (v <= l) : (op == "==") ? (v == l) : (v >= l); print ok ? "met" : "NOT met" }'
}
mib() { [[ -n $1 ]] && awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

jobs=$(get jobs.count)
waiters=${BENCH_LINE_WAITERS:-200}
rss=$(mib "$(get rss.exec.rlock.kib)")
rss_flock=$(mib "$(get rss.exec.flock.kib)")
h1=$(get handoff.w2.rlock.p50)
h_line=$(get line.rlock.1.handoff.p50)
t_one=$(ratio "$(get throughput.rlock.16.per_s)" "$(get throughput.flock.16.per_s)")
t_each=$(ratio "$(get throughput.distinct.rlock.16.per_s)" "$(get throughput.distinct.flock.16.per_s)")
renew=$(get jobs.renew.ratio)
bench_section "summary (issue 20 targets)"
{
  printf '%s|%s|%s|%s\n' "figure" "measured" "target" "verdict"
  printf '%s|%s|%s|%s\n' "$waiters waiters released after 1 s: out of place" "$(get line.rlock.1.out_of_place)" \
    "0" "$(verdict "$(get line.rlock.1.out_of_place)" '==' 0)"
  printf '%s|%s|%s|%s\n' "the same after 35 s (past a lease: re-checks)" "$(get line.rlock.35.out_of_place)" \
    "0" "$(verdict "$(get line.rlock.35.out_of_place)" '==' 0)"
  printf '%s|%s|%s|%s\n' "requests/s per idle waiter (35 s)" "$(get line.rlock.35.requests_per_waiter)" \
    "<= 0.01" "$(verdict "$(get line.rlock.35.requests_per_waiter)" '<=' 0.01)"
  printf '%s|%s|%s|%s\n' "  all commands/s per idle waiter, scripts' included" \
    "$(get line.rlock.35.commands_per_waiter)" "-" "-"
  printf '%s|%s|%s|%s\n' "status over $(get status.names) names / C scan floor" "$(get status.status.ratio)x" \
    "<= 1.5x" "$(verdict "$(get status.status.ratio)" '<=' 1.5)"
  printf '%s|%s|%s|%s\n' "status --json / floor" "$(get status.status-json.ratio)x" \
    "<= 1.5x" "$(verdict "$(get status.status-json.ratio)" '<=' 1.5)"
  printf '%s|%s|%s|%s\n' "status peak RSS text / json (MiB)" \
    "$(get status.status.rss_mib) / $(get status.status-json.rss_mib)" "<= 16" \
    "$(verdict "$(awk -v a="$(get status.status.rss_mib)" -v b="$(get status.status-json.rss_mib)" 'BEGIN { print (a > b) ? a : b }')" '<=' 16)"
  printf '%s|%s|%s|%s\n' "status NAME among those names / alone" "$(get status.one.ratio)x" \
    "<= 1.2x" "$(verdict "$(get status.one.ratio)" '<=' 1.2)"
  printf '%s|%s|%s|%s\n' "Redis bytes per held lock (lock + meta + fence)" "$(get keys.short.bytes)" \
    "<= 450" "$(verdict "$(get keys.short.bytes)" '<=' 450)"
  printf '%s|%s|%s|%s\n' "  used_memory per lock: lease / supervised (its connection)" \
    "$(get jobs.redis.per_lease) / $(get jobs.redis.per_conn) ($(get jobs.redis.per_client))" "-" "-"
  printf '%s|%s|%s|%s\n' "RSS of one supervising exec (MiB), flock's" "$rss, flock $rss_flock" "<= 2" \
    "$(verdict "$rss" '<=' 2)"
  printf '%s|%s|%s|%s\n' "  PSS each (KiB), flock's; all $jobs supervisors (MiB)" \
    "$(get pss.exec.rlock.kib), flock $(get pss.exec.flock.kib); $(get pss.exec.total.mib)" "-" "-"
  printf '%s|%s|%s|%s\n' "hand-off p50, $waiters queued / 1 queued" "$(ratio "$h_line" "$h1")x ($h_line / $h1 ms)" \
    "<= 1.2x" "$(verdict "$(ratio "$h_line" "$h1")" '<=' 1.2)"
  printf '%s|%s|%s|%s\n' "  hand-off p90, $waiters queued (ms)" "$(get line.rlock.1.handoff.p90)" "-" "-"
  printf '%s|%s|%s|%s\n' "renewal load, $jobs jobs / (N x 3 / TTL)" \
    "${renew}x ($(get jobs.renew.rate)/s)" "1.00x" "$(verdict "$(awk -v r="$renew" 'BEGIN { print (r >= 0.95 && r <= 1.05) }')" '==' 1)"
  printf '%s|%s|%s|%s\n' "16 clients, one name: sections/s / flock's" "${t_one}x" "-" "-"
  printf '%s|%s|%s|%s\n' "16 clients, a name each: sections/s / flock's" "${t_each}x" "-" "-"
  printf '%s|%s|%s|%s\n' "  16 clients, a name each: rlock sections/s" "$(get throughput.distinct.rlock.16.per_s)" "-" "-"
} | column -t -s'|'
echo "(the renewal verdict allows 5% either way: a window catches whole renewals only)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); bench: done in $((SECONDS - started)) s"
