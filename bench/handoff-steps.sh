#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where a hand-off's time goes, step by step: the hand-off loop of bench/handoff.sh (W workers
# looping `LOCK k -- benchtool hold FILE 5`) for flock and for rlock, each under
# `perf record -a` of the system calls that mark the steps (raw_syscalls tracepoints, filtered
# to a dozen calls) and of process exec/exit/fork, on CLOCK_MONOTONIC like the jobs' own
# timestamps. bench/handoff_steps.py pairs each job's end with the next job's start and prints
# the median and p90 of every step between them (docs/performance.md, Hand-off). Needs perf
# and the right to trace the whole system (root, or kernel.perf_event_paranoid <= -1).
# Tracing costs a few microseconds per traced call, so the totals run above bench/handoff.sh's.
# BENCH_HANDOFF_WORKERS as for bench/handoff.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"
command -v perf >/dev/null || bench_die "perf is not installed (Debian: linux-perf)"
[[ -x /usr/bin/python3 ]] || bench_die "/usr/bin/python3 is needed to read the trace"

workers=${BENCH_HANDOFF_WORKERS:-4} per_worker=60
((BENCH_QUICK)) && per_worker=25
work=$BENCH_DIR/work/handoff-steps
mkdir -p "$work"
tool=$BENCH_DIR/bin/benchtool
redis_pid=$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | sed -n 's/^process_id://p')

# read, write, poll, close, writev, sendto, recvfrom, sendmsg, recvmsg, clone, vfork, execve,
# wait4, flock, exit_group, epoll_wait, waitid, ppoll, clone3.
calls="0 1 7 3 20 44 45 46 47 56 58 59 61 73 231 232 247 271 435"
filter=""
for nr in $calls; do filter+="${filter:+ || }id == $nr"; done

# trace NAME CMD-PREFIX...: the loop under perf; leaves NAME.sections and NAME.perf.txt.
trace() {
  local name=$1
  shift
  local sections=$work/$name.sections
  : >"$sections"
  cat >"$work/$name.loop" <<EOS
#!/usr/bin/env bash
for ((i = 0; i < $workers; ++i)); do
  bash -c 'for ((n = 0; n < $per_worker; ++n)); do "\$@" "$tool" hold "$sections" 5 >/dev/null 2>>"$sections.err" || exit 1; done' loop $(printf '%q ' "$@") &
done
wait
EOS
  chmod +x "$work/$name.loop"
  # perf's own calls are filtered out by its pid: the shell's, which exec turns into perf.
  sh -c 'exec perf record -q -k CLOCK_MONOTONIC -a -o "$1" -e raw_syscalls:sys_enter --filter "common_pid != $$ && ($2)" -e raw_syscalls:sys_exit --filter "common_pid != $$ && ($2)" -e sched:sched_process_exec -e sched:sched_process_exit -e sched:sched_process_fork -- "$3"' \
    trace "$work/$name.perf.data" "$filter" "$work/$name.loop" 2>"$work/$name.perf.err" ||
    bench_die "perf record failed: $(tail -3 "$work/$name.perf.err")"
  perf script -i "$work/$name.perf.data" --ns -F comm,pid,tid,time,event,trace 2>/dev/null >"$work/$name.perf.txt"
  rm -f "$work/$name.perf.data"
}

bench_section "hand-off steps: $workers workers x $per_worker jobs holding 5 ms, traced (load $(cut -d' ' -f1-3 /proc/loadavg))"
trace flock flock "$work/flock.lock"
/usr/bin/python3 "$BENCH_SRC/handoff_steps.py" flock "$work/flock.sections" "$work/flock.perf.txt"
trace rlock "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-hs --
/usr/bin/python3 "$BENCH_SRC/handoff_steps.py" rlock "$work/rlock.sections" "$work/rlock.perf.txt" "$redis_pid"
