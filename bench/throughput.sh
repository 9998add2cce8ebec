#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput and fairness: C contenders (2, 4, 8) each run `LOCK-TOOL k -- true` in a shell
# loop for a fixed time; prints critical sections per second (all workers) and the spread of
# per-worker counts (min/mean, max/mean). rlock beside flock and etcdctl lock.
# BENCH_CONTENDERS lists the contender counts (default "2 4 8"); BENCH_DISTINCT=1 gives each
# contender its own lock name (and flock its own file): no contention, only the server's and
# the machine's capacity.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

seconds=5
((BENCH_QUICK)) && seconds=2
distinct=${BENCH_DISTINCT:-0}
mode=""
((distinct)) && mode=".distinct"

work=$BENCH_DIR/work/throughput
mkdir -p "$work"

# run NAME CONTENDERS CMD...: the loop for one tool and one contender count.
run() {
  local name=$1 contenders=$2
  shift 2
  local dir=$work/$name.$contenders$mode pids=() i
  mkdir -p "$dir"
  rm -f "$dir"/count.* "$dir/stop"
  local start end
  start=$(date +%s%N)
  for ((i = 0; i < contenders; ++i)); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    local cmd=("$@")
    # Distinct: the lock name (rlock, etcdctl) or file (flock) is the argument marked @ID@.
    ((distinct)) && cmd=("${cmd[@]//@ID@/-$i}") || cmd=("${cmd[@]//@ID@/}")
    bench_spawn bash -c 'n=0; while [[ ! -e $1/stop ]]; do "${@:3}" >/dev/null 2>>"$1/err" && n=$((n + 1)); done; echo "$n" >"$1/count.$2"' \
      loop "$dir" "$i" "${cmd[@]}"
    pids+=("$BENCH_LAST_PID")
  done
  sleep "$seconds"
  : >"$dir/stop"
  local pid
  for pid in "${pids[@]}"; do
    wait "$pid" || true
    bench_stop "$pid"
  done
  end=$(date +%s%N)
  cat "$dir"/count.* | awk -v name="$name" -v c="$contenders" -v ns=$((end - start)) '
    { n[NR] = $1; sum += $1; if (NR == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
    END {
      mean = sum / NR
      printf "%-8s contenders=%d sections=%d per_s=%.1f min/mean=%.2f max/mean=%.2f\n",
             name, c, sum, sum / (ns / 1e9), lo / mean, hi / mean
    }' | tee "$dir/line"
  bench_result "throughput$mode.$name.$contenders.per_s" "$(sed -n 's/.*per_s=\([0-9.]*\).*/\1/p' "$dir/line")"
  bench_result "throughput$mode.$name.$contenders.min" "$(sed -n 's/.*min\/mean=\([0-9.]*\).*/\1/p' "$dir/line")"
  bench_result "throughput$mode.$name.$contenders.max" "$(sed -n 's/.*max\/mean=\([0-9.]*\).*/\1/p' "$dir/line")"
}

what="one lock"
((distinct)) && what="a lock each"
bench_section "throughput and fairness: contenders looping \`LOCK k -- true\` for ${seconds}s, $what"
for contenders in ${BENCH_CONTENDERS:-2 4 8}; do
  run flock "$contenders" flock "$work/flock@ID@.lock" true
  run rlock "$contenders" "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-t@ID@ -- true
  if [[ -n $ETCD_ENDPOINT ]]; then
    run etcdctl "$contenders" etcdctl --endpoints "$ETCD_ENDPOINT" lock bench-t@ID@ true
  fi
done
[[ -n $ETCD_ENDPOINT ]] || echo "note: ${ETCD_MISSING:-etcd unavailable}"
