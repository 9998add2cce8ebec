#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Uncontended whole-process cost and peak RSS: `rlock exec k -- true` beside `flock FILE true`,
# a redis-cli SET NX PX + EVAL script, `etcdctl lock`, a redis-py script and the minlock
# yardstick, run paired (A B C … A B C …) by benchtool ab. Ratios are to flock.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

runs=300 warmup=20
((BENCH_QUICK)) && runs=60 warmup=5
work=$BENCH_DIR/work/uncontended
mkdir -p "$work"

# The slow anchors (python, etcdctl: tens of ms each) get a separate, shorter pairing with
# flock so that they do not stretch the fast pairing over minutes.
bench_section "uncontended: whole process, paired, $runs runs"
echo "ratio = median / flock's median; pair_rt = median of per-round ratios; cpu = mean user+system"
echo "time of the process and its children (robust to a loaded machine); rss = peak RSS"
fast=(flock "flock $work/flock.lock true"
      rlock "$RLOCK --url $REDIS_URL_BENCH exec bench-u -- true")
[[ -z $RLOCK2 ]] || fast+=(rlock2 "$RLOCK2 --url $REDIS_URL_BENCH exec bench-u2 -- true")
fast+=(minlock "$BENCH_DIR/bin/minlock $REDIS_PORT bench-m true"
       redis-cli "$BENCH_SRC/anchors/redis-cli-lock.sh $REDIS_PORT bench-c true")
"$BENCH_DIR/bin/benchtool" ab -n "$runs" -w "$warmup" -o "$work/stderr.log" "${fast[@]}" | tee "$work/fast.txt"
echo "(minlock: bench/minlock.c, a static C client doing the same two round trips: the floor)"

slow_runs=$((runs / 6))
((slow_runs >= 10)) || slow_runs=10
slow=(flock "flock $work/flock.lock true" rlock "$RLOCK --url $REDIS_URL_BENCH exec bench-u -- true")
[[ -n $ETCD_ENDPOINT ]] && slow+=(etcdctl "etcdctl --endpoints $ETCD_ENDPOINT lock bench-e true")
[[ -n $PYTHON ]] && slow+=(redis-py "$PYTHON $BENCH_SRC/anchors/redis-py-lock.py $REDIS_PORT bench-p true")
if ((${#slow[@]} > 4)); then
  bench_section "uncontended: slow anchors, paired, $slow_runs runs"
  "$BENCH_DIR/bin/benchtool" ab -n "$slow_runs" -w 2 -o "$work/stderr.log" "${slow[@]}" | tee "$work/slow.txt"
fi
[[ -z ${ETCD_MISSING:-} ]] || echo "note: $ETCD_MISSING"
[[ -z ${PY_MISSING:-} ]] || echo "note: $PY_MISSING"

# name -> ratio (median/median), pair ratio, median ms, cpu ratio, rss
record() {
  local file=$1
  awk 'NR > 1 { print $1, $5, $6, $2, $8, $9, $10 }' "$file" | tr -d x | while read -r name ratio pair ms cpu rss fail; do
    bench_result "uncontended.$name.ratio" "$ratio"
    bench_result "uncontended.$name.pair" "$pair"
    bench_result "uncontended.$name.ms" "$ms"
    bench_result "uncontended.$name.cpu" "$cpu"
    bench_result "rss.$name.kib" "$rss"
    ((fail == 0)) || echo "warning: $name failed $fail times (see $work/stderr.log)" >&2
  done
}
[[ -f $work/slow.txt ]] && record "$work/slow.txt"
record "$work/fast.txt"
