#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# rlock on a quorum of independent masters beside single Redis, in one run (issue 17).
# Starts five redis-servers of its own on free loopback ports (no persistence, like lib.sh's);
# single Redis is lib.sh's server. The ways in:
#   single  --url SINGLE                       (the baseline, 1.00x)
#   q3      --url A --url B --url C            (3 nodes, a majority is 2)
#   q5      --url A … --url E                  (5 nodes, a majority is 3)
# it measures
#   1. uncontended `rlock exec k -- true`, whole process, paired by benchtool ab (single q3 q5
#      single q3 q5 …, so that drift in the machine's load hits every way alike): every exec is
#      a fresh process, so this includes connecting to every node;
#   2. the request writes one such exec makes to each node (strace, when installed): the round
#      trips, which a quorum sends to every node at once.
# Target (issue 17): q5 <= 1.30x single Redis.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

runs=300 warmup=20
((BENCH_QUICK)) && runs=60 warmup=5
work=$BENCH_DIR/work/quorum
rm -rf "$work"
mkdir -p "$work"
tool=$BENCH_DIR/bin/benchtool
name=bench-q

# Fresh ports, none handed out twice in this run.
used_ports=" $REDIS_PORT "
port() {
  local p
  for _ in $(seq 1 50); do
    p=$("$tool" freeport)
    if [[ $used_ports != *" $p "* ]]; then
      used_ports+="$p "
      echo "$p"
      return 0
    fi
  done
  bench_die "no free port"
}

nodes=()
for i in 0 1 2 3 4; do
  p=$(port)
  nodes+=("$p")
  dir=$work/node$i
  mkdir -p "$dir"
  printf '%s\n' "port $p" "bind 127.0.0.1" "dir $dir" 'save ""' "appendonly no" "logfile $dir/redis.log" \
    "daemonize no" >"$dir/redis.conf"
  bench_spawn redis-server "$dir/redis.conf"
done
for p in "${nodes[@]}"; do
  bench_wait_for 10 redis-cli -p "$p" ping || bench_die "redis-server on $p did not start"
done
urls() { # urls N: --url for the first N nodes
  local i out=""
  for ((i = 0; i < $1; ++i)); do out+=" --url redis://127.0.0.1:${nodes[i]}"; done
  echo "${out# }"
}
ways=(single "--url $REDIS_URL_BENCH" q3 "$(urls 3)" q5 "$(urls 5)")

echo "single Redis 127.0.0.1:$REDIS_PORT; quorum nodes ${nodes[*]/#/127.0.0.1:} (q3: the first three)"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < ${#ways[@]}; i += 2)); do printf '  %-7s %s\n' "${ways[i]}" "${ways[i + 1]}"; done

# Every way works before anything is timed (and the scripts are loaded on every node).
for ((i = 0; i < ${#ways[@]}; i += 2)); do
  # shellcheck disable=SC2086 # the URL options are words
  "$RLOCK" ${ways[i + 1]} exec "$name" -- true 2>>"$work/check.err" ||
    bench_die "rlock exec via ${ways[i]} failed: $(tail -2 "$work/check.err")"
done

# ---- 1. uncontended, whole process ---------------------------------------------------------
bench_section "uncontended: whole process (connecting included), paired, $runs runs; ratio to single Redis"
echo "ratio = median / single's median; pair_rt = median of per-round ratios; cpu = mean user+system"
ab=()
for ((i = 0; i < ${#ways[@]}; i += 2)); do ab+=("${ways[i]}" "$RLOCK ${ways[i + 1]} exec $name -- true"); done
"$tool" ab -n "$runs" -w "$warmup" -o "$work/ab.err" "${ab[@]}" | tee "$work/ab.txt"
awk 'NR > 1 { print $1, $2, $5, $6, $8, $10 }' "$work/ab.txt" | tr -d x | while read -r way ms ratio pair cpu fail; do
  bench_result "quorum.$way.ms" "$ms"
  bench_result "quorum.$way.ratio" "$ratio"
  bench_result "quorum.$way.pair" "$pair"
  bench_result "quorum.$way.cpu" "$cpu"
  ((fail == 0)) || echo "warning: $way failed $fail times (see $work/ab.err)" >&2
done

# ---- 2. round trips --------------------------------------------------------------------------
bench_section "request writes one uncontended exec makes (strace; a pipelined batch is one write)"
if command -v strace >/dev/null; then
  for ((i = 0; i < ${#ways[@]}; i += 2)); do
    way=${ways[i]}
    # shellcheck disable=SC2086 # the URL options are words
    strace -f -e trace=connect,sendto,write -s 48 -o "$work/strace.$way" "$RLOCK" ${ways[i + 1]} exec "$name" -- true \
      >/dev/null 2>&1 || true
    awk -v way="$way" '
      { sub(/^[0-9]+ +/, "") }
      /^connect\(/ && match($0, /sin_port=htons\([0-9]+\)/) { conns++; next }
      /^(sendto|write)\([0-9]+, "\*[0-9]/ { writes++ }
      END { printf "%-7s connects=%d writes=%d (%.1f per node)\n", way, conns, writes, writes / (conns ? conns : 1) }' \
      "$work/strace.$way"
  done
else
  echo "(strace not installed: skipped)"
fi

# ---- summary -------------------------------------------------------------------------------
bench_section "summary (issue 17: q5 <= 1.30x single Redis, uncontended)"
{
  printf '%s|%s|%s|%s|%s|%s\n' way "median ms" "x single" "pair ratio" "cpu x single" "target"
  for ((i = 0; i < ${#ways[@]}; i += 2)); do
    w=${ways[i]}
    verdict=""
    [[ $w == q5 ]] && verdict=$(awk -v r="$(bench_get quorum.q5.ratio)" 'BEGIN { print (r != "" && r <= 1.30) ? "met" : "NOT met" }')
    printf '%s|%s|%sx|%sx|%sx|%s\n' "$w" "$(bench_get "quorum.$w.ms")" "$(bench_get "quorum.$w.ratio")" \
      "$(bench_get "quorum.$w.pair")" "$(bench_get "quorum.$w.cpu")" "$verdict"
  done
} | column -t -s'|'
