#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every rlock benchmark against one private redis-server (and etcd when installed),
# then prints the ratios beside the targets of issue 4 (commands.sh: issue 15; semaphore.sh: issue 18; and, from topology.sh, which starts its
# own cluster and sentinels, Sentinel and Cluster beside single Redis: issue 16).
#   bench/run-all.sh [--rlock PATH] [--rlock2 PATH] [--quick]
# About 3 minutes (about a minute with --quick). Run it with stderr not on a terminal or on
# one: rlock never sees it, the scripts redirect it.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

started=$SECONDS
echo "rlock bench: $("$RLOCK" --version 2>/dev/null | head -1) ($RLOCK)"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "servers: $(redis-server --version | awk '{print $1, $2, $3}') on 127.0.0.1:$REDIS_PORT" \
  "${ETCD_ENDPOINT:+; etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p') on $ETCD_ENDPOINT}"
[[ -z ${ETCD_MISSING:-} ]] || echo "note: $ETCD_MISSING"

for script in uncontended handoff idle-waiters throughput commands semaphore roundtrips tls topology quorum; do
  "$BENCH_SRC/$script.sh" || echo "warning: $script.sh failed" >&2
done

get() { bench_get "$1"; }
# verdict VALUE OP LIMIT: "met" or "NOT met" (or "n/a" without a value).
verdict() {
  [[ -n $1 ]] || { echo "n/a"; return; }
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == "<=") ? (v <= l) : (v >= l); print ok ? "met" : "NOT met" }'
}
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }

bench_section "summary (issue 4 targets)"
u_pair=$(get uncontended.rlock.pair)
u_ratio=$(get uncontended.rlock.ratio)
h50=$(get handoff.rlock.p50)
h90=$(get handoff.rlock.p90)
idle=$(get idle.rlock.per_waiter)
t8=$(ratio "$(get throughput.rlock.8.per_s)" "$(get throughput.flock.8.per_s)")
rt=$(get roundtrips.rlock.writes)
[[ -n $rt ]] || rt=$(get roundtrips.rlock.commands)
{
  printf '%-44s|%-12s|%-10s|%s\n' "metric" "rlock" "target" "verdict"
  printf '%-44s|%-12s|%-10s|%s\n' "uncontended exec / flock (median of pairs)" "${u_pair}x" "<= 1.10x" "$(verdict "$u_pair" '<=' 1.10)"
  printf '%-44s|%-12s|%-10s|%s\n' "uncontended exec / flock (ratio of medians)" "${u_ratio}x" "<= 1.10x" "$(verdict "$u_ratio" '<=' 1.10)"
  printf '%-44s|%-12s|%-10s|%s\n' "uncontended exec CPU time / flock's" "$(get uncontended.rlock.cpu)x" "<= 1.10x" "$(verdict "$(get uncontended.rlock.cpu)" '<=' 1.10)"
  printf '%-44s|%-12s|%-10s|%s\n' "hand-off p50 (ms)" "$h50" "<= 1.0" "$(verdict "$h50" '<=' 1.0)"
  printf '%-44s|%-12s|%-10s|%s\n' "hand-off p90 (ms)" "$h90" "<= 1.5" "$(verdict "$h90" '<=' 1.5)"
  printf '%-44s|%-12s|%-10s|%s\n' "commands/s per idle waiter" "$idle" "0" "$(verdict "$idle" '<=' 0)"
  printf '%-44s|%-12s|%-10s|%s\n' "critical sections/s, 8 contenders / flock" "${t8}x" ">= 0.90x" "$(verdict "$t8" '>=' 0.90)"
  printf '%-44s|%-12s|%-10s|%s\n' "round trips, uncontended acquire+release" "$rt" "<= 3" "$(verdict "$rt" '<=' 3)"
  cc=$(get commands.rlock.contended)
  printf '%-44s|%-12s|%-10s|%s\n' "Redis commands per CS, 8 contenders (issue 15)" "$cc" "<= 10" "$(verdict "$cc" '<=' 10)"
  printf '%-44s|%-12s|%-10s|%s\n' "Redis commands per CS, uncontended" "$(get commands.rlock.uncontended)" "" ""
} | column -t -s'|'

bench_section "summary (issue 15 targets: faster than flock)"
h50f=$(get handoff.flock.p50)
mins=$(get throughput.rlock.8.min)
maxs=$(get throughput.rlock.8.max)
{
  printf '%-44s|%-12s|%-12s|%s\n' "metric" "rlock" "target" "verdict"
  printf '%-44s|%-12s|%-12s|%s\n' "uncontended exec / flock (median of pairs)" "${u_pair}x" "<= 0.92x" "$(verdict "$u_pair" '<=' 0.92)"
  m=$(ratio "$(get uncontended.rlock.ms)" "$(get uncontended.minlock.ms)")
  printf '%-44s|%-12s|%-12s|%s\n' "uncontended exec / minlock (medians)" "${m}x" "<= 1.08x" "$(verdict "$m" '<=' 1.08)"
  hr=$(ratio "$h50" "$h50f")
  printf '%-44s|%-12s|%-12s|%s\n' "hand-off p50 / flock's p50" "${hr}x ($h50 ms)" "<= 1.00x" "$(verdict "$hr" '<=' 1.0)"
  printf '%-44s|%-12s|%-12s|%s\n' "critical sections/s, 8 contenders / flock" "${t8}x" ">= 1.00x" "$(verdict "$t8" '>=' 1.0)"
  printf '%-44s|%-12s|%-12s|%s\n' "Redis commands per CS, 8 contenders" "$(get commands.rlock.contended)" "<= 10" "$(verdict "$(get commands.rlock.contended)" '<=' 10)"
  printf '%-44s|%-12s|%-12s|%s\n' "per-worker min/mean, 8 contenders" "$mins" ">= 0.95" "$(verdict "$mins" '>=' 0.95)"
  printf '%-44s|%-12s|%-12s|%s\n' "per-worker max/mean, 8 contenders" "$maxs" "<= 1.05" "$(verdict "$maxs" '<=' 1.05)"
} | column -t -s'|'

bench_section "summary (anchors; ratios to flock unless stated)"
{
  printf '%s|%s|%s|%s|%s|%s|%s%s\n' "metric" "flock" "rlock" "minlock" "redis-cli" "etcdctl" "redis-py" "${RLOCK2:+|rlock2}"
  row() {  # row LABEL KEY-PATTERN (NAME replaced by each tool)
    local pattern=$2 out=$1 name value
    for name in flock rlock minlock redis-cli etcdctl redis-py ${RLOCK2:+rlock2}; do
      value=$(get "${pattern//NAME/$name}")
      out+="|${value:--}"
    done
    printf '%s\n' "$out"
  }
  row "uncontended median ms" "uncontended.NAME.ms"
  row "uncontended ratio (medians)" "uncontended.NAME.ratio"
  row "uncontended ratio (pairs)" "uncontended.NAME.pair"
  row "uncontended CPU ratio" "uncontended.NAME.cpu"
  row "peak RSS KiB" "rss.NAME.kib"
  row "hand-off p50 ms" "handoff.NAME.p50"
  row "hand-off p90 ms" "handoff.NAME.p90"
  row "hand-off p99 ms" "handoff.NAME.p99"
  row "idle waiter commands/s" "idle.NAME.per_waiter"
  for c in 2 4 8; do
    row "sections/s, $c contenders" "throughput.NAME.$c.per_s"
    row "  min/mean, $c contenders" "throughput.NAME.$c.min"
    row "  max/mean, $c contenders" "throughput.NAME.$c.max"
  done
  printf '%s|%s|%s|%s|%s|%s|%s\n' "rss rlock / flock" "" "$(ratio "$(get rss.rlock.kib)" "$(get rss.flock.kib)")" "" "" "" ""
} | column -t -s'|'
[[ -z ${ETCD_MISSING:-} ]] || echo "note: $ETCD_MISSING"
[[ -z ${PY_MISSING:-} ]] || echo "note: $PY_MISSING"
echo "(rss: the fast pairing's median; the slow pairing's rlock/flock rows are overwritten by it)"

if [[ -n $(get topology.single.ms) ]]; then
  bench_section "summary (issue 16: Sentinel and Cluster beside single Redis; target <= 1.10x once warm)"
  {
    printf '%s|%s|%s|%s|%s|%s|%s\n' "way" "exec / single (first contact)" "round trips" "hand-off p50 ms" \
      "hand-off p50 / single (warm)" "verdict" "p50 / same server, plain URL"
    for way in single cl-plain cl-owner cl-other cl-auto s-plain s-one sentinel; do
      r=$(get "topology.handoff.$way.ratio")
      printf '%s|%sx|%s|%s|%sx|%s|%sx\n' "$way" "$(get "topology.$way.ratio")" "$(get "topology.$way.trips")" \
        "$(get "topology.handoff.$way.p50")" "$r" "$(verdict "$r" '<=' 1.10)" "$(get "topology.handoff.$way.plain")"
    done
  } | column -t -s'|'
fi
if [[ -n $(get quorum.single.ms) ]]; then
  bench_section "summary (issue 17: a quorum of independent masters; target q5 <= 1.30x single Redis, uncontended)"
  {
    printf '%s|%s|%s|%s|%s\n' "way" "exec ms" "exec / single" "pair ratio" "verdict"
    for way in single q3 q5; do
      r=$(get "quorum.$way.ratio")
      v=""
      [[ $way == q5 ]] && v=$(verdict "$r" '<=' 1.30)
      printf '%s|%s|%sx|%sx|%s\n' "$way" "$(get "quorum.$way.ms")" "$r" "$(get "quorum.$way.pair")" "$v"
    done
  } | column -t -s'|'
fi
if [[ -n $(get semaphore.sem.per_s) ]]; then
  bench_section "summary (issue 18: a semaphore, 8 workers on --limit 4, beside a mutex with 1 worker)"
  {
    printf '%s|%s|%s|%s\n' "metric" "value" "target" "verdict"
    printf '%s|%s|%s|%s\n' "acquisitions/s, semaphore" "$(get semaphore.sem.per_s)" "" ""
    printf '%s|%s|%s|%s\n' "acquisitions/s, mutex (1 worker)" "$(get semaphore.mutex.per_s)" "" ""
    printf '%s|%sx|%s|%s\n' "semaphore / mutex" "$(get semaphore.ratio)" "" ""
    printf '%s|%s|%s|%s\n' "semaphore hand-off p50 ms" "$(get semaphore.handoff.p50)" "" ""
    printf '%s|%s|%s|%s\n' "semaphore hand-off p90 ms" "$(get semaphore.handoff.p90)" "" ""
    printf '%s|%s|%s|%s\n' "per-worker min/mean" "$(get semaphore.min)" ">= 0.90" "$(verdict "$(get semaphore.min)" '>=' 0.90)"
    printf '%s|%s|%s|%s\n' "per-worker max/mean" "$(get semaphore.max)" "<= 1.10" "$(verdict "$(get semaphore.max)" '<=' 1.10)"
    printf '%s|%s|%s|%s\n' "most jobs at once" "$(get semaphore.max_concurrent)" "<= 4" "$(verdict "$(get semaphore.max_concurrent)" '<=' 4)"
  } | column -t -s'|'
fi
echo "bench: done in $((SECONDS - started)) s"
