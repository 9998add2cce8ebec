#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many supervised jobs at once: N `rlock exec scale-job-I --ttl 30s -- sleep` (1,000 by
# default, BENCH_JOBS to change; 100 with --quick), each on its own name, as a fleet's cron
# jobs would be. Prints:
#   start         seconds until all N hold their locks
#   rss / pss     each supervising rlock's resident set (median, KiB) and the sum of all their
#                 proportional set sizes (MiB), beside the same for flock(1) holding a lock
#                 while it runs a job (20 of them)
#   redis bytes   growth of the server's used_memory per held lock, with the holder's
#                 connection (the N supervisors), and per lock without one (N `acquire
#                 --lease` locks, which keep no connection); clients' share from INFO memory
#   renewals      commands/s the N supervisors send over a window (INFO commandstats), beside
#                 the N x 3 / TTL they should (a renewal every third of the lease)
# Targets (issue 20): rss <= 2 MiB, reported beside flock; renewal load exactly N x 3 / TTL.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

jobs=${BENCH_JOBS:-1000} window=30 ttl_s=30 anchors=20
((BENCH_QUICK)) && jobs=${BENCH_JOBS:-100} window=10
work=$BENCH_DIR/work/jobs
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")

used_memory() { "${cli[@]}" info memory | tr -d '\r' | sed -n "s/^$1://p"; }
count_keys() { "${cli[@]}" eval "return #redis.call('KEYS', ARGV[1])" 0 "$1"; }
# Client-sent calls (EVALSHA and EVAL) so far, from INFO commandstats.
sent_calls() {
  "${cli[@]}" info commandstats | tr -d '\r' | awk -F'[:=,]' '
    $1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" { n += $3 } END { print n + 0 }'
}
# status_kib PID FIELD: a /proc/PID/status field (VmRSS) in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
pss_kib() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }

# Stops a list of process groups at once (bench_stop would wait for each in turn).
stop_all() {
  local pid
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do
    [[ " $* " == *" $p "* ]] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

bench_section "$jobs supervised jobs at once (rlock exec --ttl ${ttl_s}s, each on its own name)"
"${cli[@]}" flushall >/dev/null
base=$(used_memory used_memory)
base_clients=$(used_memory mem_clients_normal)
# An fd limit high enough for the supervisors' sockets is the server's, not ours: each rlock
# has its own. redis-server's default maxclients (10,000) is enough for the default count.
t0=$(date +%s%N)
pids=()
for ((i = 0; i < jobs; ++i)); do
  bench_spawn "$RLOCK" exec "scale-job-$i" --ttl "${ttl_s}s" -- sleep 3600 2>>"$work/err"
  pids+=("$BENCH_LAST_PID")
done
all_held() { [[ $(count_keys 'rlock:{scale-job-*}') -ge $jobs ]]; }
bench_wait_for 300 all_held || bench_die "only $(count_keys 'rlock:{scale-job-*}') of $jobs jobs took their locks (see $work/err)"
t1=$(date +%s%N)
start_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

# Settle: the last supervisors finish starting their jobs before memory is read.
sleep 2
rss_rlock=$(for p in "${pids[@]}"; do status_kib "$p" VmRSS; done | median)
pss_rlock=$(for p in "${pids[@]}"; do pss_kib "$p"; done | sum)
with_conn=$(used_memory used_memory)
with_clients=$(used_memory mem_clients_normal)

before=$(sent_calls)
sleep "$window"
after=$(sent_calls)
renew_rate=$(awk -v d=$((after - before)) -v s="$window" 'BEGIN { printf "%.1f", d / s }')
renew_expected=$(awk -v n="$jobs" -v t="$ttl_s" 'BEGIN { printf "%.1f", n * 3 / t }')
renew_ratio=$(awk -v a="$renew_rate" -v b="$renew_expected" 'BEGIN { printf "%.2f", a / b }')
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
stop_all "${pids[@]}"

# The anchor: flock(1) holding a lock while its job runs, as `flock FILE sleep` does.
apids=()
for ((i = 0; i < anchors; ++i)); do
  bench_spawn flock "$work/flock.$i" sleep 3600
  apids+=("$BENCH_LAST_PID")
done
sleep 1
rss_flock=$(for p in "${apids[@]}"; do status_kib "$p" VmRSS; done | median)
pss_flock=$(for p in "${apids[@]}"; do pss_kib "$p"; done | median)
stop_all "${apids[@]}"

# Without the connection: the same number of locks taken as leases (no process keeps them).
"${cli[@]}" flushall >/dev/null
lease_base=$(used_memory used_memory)
cat >"$work/leases" <<'EOF'
#!/bin/bash
for ((i = 0; i < $1; ++i)); do "$RLOCK" acquire "scale-job-$i" --lease --ttl 10m >/dev/null || exit 1; done
EOF
chmod +x "$work/leases"
(cd "$work" && ./leases "$jobs") || bench_die "taking $jobs leases failed"
leases=$(used_memory used_memory)
"${cli[@]}" flushall >/dev/null

per_conn=$(((with_conn - base) / jobs))
per_clients=$(((with_clients - base_clients) / jobs))
per_lease=$(((leases - lease_base) / jobs))
pss_mean=$(awk -v s="$pss_rlock" -v n="$jobs" 'BEGIN { printf "%.0f", s / n }')
printf 'start:     %d jobs holding their locks after %s s; %d still running after the %d s window\n' \
  "$jobs" "$start_s" "$alive" "$window"
printf 'memory:    rlock exec RSS median %s KiB, PSS %s KiB each (%s MiB for all %d); flock RSS %s KiB, PSS %s KiB\n' \
  "$rss_rlock" "$pss_mean" "$(awk -v s="$pss_rlock" 'BEGIN { printf "%.1f", s / 1024 }')" "$jobs" "$rss_flock" "$pss_flock"
printf 'redis:     %d bytes of used_memory per held lock with its holder connected (%d of them the client), %d per lease without a connection\n' \
  "$per_conn" "$per_clients" "$per_lease"
printf 'renewals:  %s requests/s over %d s for %d jobs; expected %s (N x 3 / TTL): %sx\n' \
  "$renew_rate" "$window" "$jobs" "$renew_expected" "$renew_ratio"
bench_result jobs.count "$jobs"
bench_result jobs.start_s "$start_s"
bench_result jobs.alive "$alive"
bench_result rss.exec.rlock.kib "$rss_rlock"
bench_result rss.exec.flock.kib "$rss_flock"
bench_result pss.exec.rlock.kib "$pss_mean"
bench_result pss.exec.flock.kib "$pss_flock"
bench_result pss.exec.total.mib "$(awk -v s="$pss_rlock" 'BEGIN { printf "%.1f", s / 1024 }')"
bench_result jobs.redis.per_conn "$per_conn"
bench_result jobs.redis.per_client "$per_clients"
bench_result jobs.redis.per_lease "$per_lease"
bench_result jobs.renew.rate "$renew_rate"
bench_result jobs.renew.expected "$renew_expected"
bench_result jobs.renew.ratio "$renew_ratio"
