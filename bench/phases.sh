#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where an uncontended `rlock exec k -- true` spends its wall time, phase by phase: kernel
# tracepoints (`perf trace`, a few microseconds each, unlike strace's ptrace stops) time the
# exec of rlock, its first and second request (sendto) and answer (recvfrom), the exec and exit
# of the job, and rlock's exit; medians over N runs. Needs perf with tracepoint access (root).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"
command -v perf >/dev/null || bench_die "perf is not installed"

runs=200
((BENCH_QUICK)) && runs=40
work=$BENCH_DIR/work/phases
mkdir -p "$work"

bench_section "phases of rlock exec k -- true, $runs runs, medians (perf trace)"
"$RLOCK" --url "$REDIS_URL_BENCH" exec bench-ph -- true # the scripts loaded, as in a steady state
# shellcheck disable=SC2016 # the loop's $1… are bash -c's own arguments
perf trace -a --no-syscalls -o "$work/trace.txt" \
  -e 'sched:sched_process_exec,sched:sched_process_exit,syscalls:sys_enter_sendto,syscalls:sys_exit_recvfrom' \
  -- bash -c 'for ((i = 0; i < $1; i++)); do "$2" --url "$3" exec bench-ph -- true; done' _ \
  "$runs" "$RLOCK" "$REDIS_URL_BENCH"

# Per run (one rlock pid): its exec, the first sendto, the first recvfrom with data, the job's
# exec and exit, the second sendto and recvfrom with data, rlock's exit. The job's events come
# under its own pid, between rlock's first answer and its second request.
awk -v rlock="$(basename "$RLOCK")" '
  function field(name,   i) { for (i = 1; i <= NF; i++) if (index($i, name) == 1) return $i; return "" }
  function pid_of(text) { sub(/^[^\/]*\//, "", text); return text + 0 }
  {
    t = $1 * 1000; pid = pid_of($2)
    if ($3 ~ /sched_process_exec/ && index($0, "filename: \"") && $0 ~ ("/" rlock "\"|\"" rlock "\"")) {
      current = pid; start[pid] = t; sends[pid] = 0; answers[pid] = 0; next
    }
    if (current == "") next
    if ($3 ~ /sched_process_exec/ && pid != current) { job_exec[current] = t; next }
    if ($3 ~ /sched_process_exit/ && pid != current) { job_exit[current] = t; next }
    if (pid != current) next
    if ($3 ~ /sys_enter_sendto/) { sends[pid]++; if (sends[pid] == 1) send1[pid] = t; else if (sends[pid] == 2) send2[pid] = t; next }
    if ($3 ~ /sys_exit_recvfrom/ && $0 !~ /ret: -/) {
      answers[pid]++; if (answers[pid] == 1) answer1[pid] = t; else if (answers[pid] == 2) answer2[pid] = t; next
    }
    if ($3 ~ /sched_process_exit/) { finish[pid] = t; current = "" }
  }
  END {
    for (pid in finish) {
      if (!(pid in answer2) || !(pid in job_exit)) continue
      n++
      p1[n] = send1[pid] - start[pid]; p2[n] = answer1[pid] - send1[pid]; p3[n] = job_exec[pid] - answer1[pid]
      p4[n] = job_exit[pid] - job_exec[pid]; p5[n] = send2[pid] - job_exit[pid]; p6[n] = answer2[pid] - send2[pid]
      p7[n] = finish[pid] - answer2[pid]; p8[n] = finish[pid] - start[pid]
    }
    printf "%-52s %10s\n", "phase (" n " runs)", "median_us"
    show("start-up: exec of rlock to the first byte on the socket", p1)
    show("round trip 1: acquire sent to its answer", p2)
    show("spawn: the answer to the exec of the job", p3)
    show("the job (true): its exec to its exit", p4)
    show("wait: the job exits to the release sent", p5)
    show("round trip 2: release sent to its answer", p6)
    show("exit: the answer to rlock gone", p7)
    show("whole: exec of rlock to rlock gone", p8)
  }
  function show(label, values,   i, j, tmp, m) {
    for (i = 1; i <= n; i++) sorted[i] = values[i]
    for (i = 2; i <= n; i++) { tmp = sorted[i]; for (j = i - 1; j >= 1 && sorted[j] > tmp; j--) sorted[j + 1] = sorted[j]; sorted[j + 1] = tmp }
    m = n % 2 ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
    printf "%-52s %10.0f\n", label, m
  }
' "$work/trace.txt"
