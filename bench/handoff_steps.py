#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Steps of each hand-off, from a trace made by bench/handoff-steps.sh.

usage: handoff_steps.py flock|rlock SECTIONS PERF_TXT [REDIS_PID]

SECTIONS holds `start end` (CLOCK_MONOTONIC ns) per job, as `benchtool hold` wrote them;
PERF_TXT is `perf script --ns -F comm,pid,tid,time,event,trace` of a trace on the same clock.
A hand-off is a job's end and the next job's start. Its steps are found from the processes
involved: the job that ended (A), the lock tool that ran it (its parent), the tool that runs
the next job (B) and that job. Prints the median and p90 of each step in microseconds.
"""
import bisect
import collections
import re
import sys

SENDTO, RECVFROM, READ, WRITE, POLL, PPOLL = 44, 45, 0, 1, 7, 271
VFORK, CLONE, CLONE3, WAIT4, FLOCK = 58, 56, 435, 61, 73
LINE = re.compile(r'^\s*(.*?)\s+(\d+)/(\d+)\s+(\d+)\.(\d+):\s+(\S+):\s*(.*)$')


def load(perf_txt):
    calls = collections.defaultdict(list)  # tid -> [(t, 'in'|'out', nr, ret)]
    execs, exits, parent = {}, {}, {}
    with open(perf_txt) as trace:
        for line in trace:
            m = LINE.match(line)
            if not m:
                continue
            _, pid, tid, sec, frac, event, rest = m.groups()
            t = int(sec) * 10**9 + int(frac.ljust(9, '0'))
            if event == 'raw_syscalls:sys_enter':
                calls[int(tid)].append((t, 'in', int(rest.split()[1]), 0))
            elif event == 'raw_syscalls:sys_exit':
                r = re.match(r'NR (\d+) = (-?\d+)', rest)
                calls[int(tid)].append((t, 'out', int(r.group(1)), int(r.group(2))))
            elif event == 'sched:sched_process_exec':
                if re.search(r'filename=\S*/benchtool\b', rest):
                    execs[int(pid)] = t
            elif event == 'sched:sched_process_exit':
                exits[int(re.search(r'pid=(\d+)', rest).group(1))] = t
            elif event == 'sched:sched_process_fork':
                r = re.search(r'pid=(\d+) child_comm=.* child_pid=(\d+)', rest)
                parent[int(r.group(2))] = int(r.group(1))
    return calls, execs, exits, parent


def main():
    kind, sections_path, perf_txt = sys.argv[1:4]
    redis_pid = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    with open(sections_path) as f:
        sections = sorted(tuple(int(x) for x in line.split()) for line in f if line.strip())
    calls, execs, exits, parent = load(perf_txt)
    jobs = sorted((t, pid) for pid, t in execs.items())
    job_times = [t for t, _ in jobs]

    def job_of(start):
        i = bisect.bisect_right(job_times, start) - 1
        return jobs[i][1] if i >= 0 and start - jobs[i][0] < 3_000_000 else None

    def first(tid, after, way, nrs, before=None, ret=None):
        for t, w, nr, value in calls.get(tid, []):
            if t >= after and w == way and nr in nrs and (ret is None or ret(value)):
                return t if before is None or t < before else None
        return None

    def last(tid, before, way, nrs, after=0):
        found = None
        for t, w, nr, _ in calls.get(tid, []):
            if t >= before:
                break
            if t >= after and w == way and nr in nrs:
                found = t
        return found

    steps = collections.defaultdict(list)
    skipped = collections.Counter()
    for (start_a, end_a), (start_b, _) in zip(sections, sections[1:]):
        job_a, job_b = job_of(start_a), job_of(start_b)
        tool_a, tool_b = parent.get(job_a), parent.get(job_b)
        exit_a = exits.get(job_a)
        if None in (job_a, job_b, tool_a, tool_b, exit_a):
            skipped['not traced'] += 1
            continue
        exec_b = execs[job_b]
        if kind == 'flock':
            woken_a = first(tool_a, exit_a, 'out', (WAIT4,))
            gone_a = exits.get(tool_a)
            locked_b = last(tool_b, exec_b, 'out', (FLOCK,))
            fork_b = first(tool_b, locked_b or exec_b, 'in', (CLONE, CLONE3, VFORK))
            row = [woken_a, gone_a, locked_b, fork_b]
            if None in row:
                skipped['steps not found'] += 1
                continue
            row = [('job A ends -> its exit begins', exit_a - end_a),
                   ('-> flock A wakes (wait4 returns)', woken_a - exit_a),
                   ('-> flock A exits (frees the lock)', gone_a - woken_a),
                   ('-> flock B returns from flock()', locked_b - gone_a),
                   ('-> flock B forks', fork_b - locked_b),
                   ('-> job B execs', exec_b - fork_b),
                   ('-> job B starts (its clock read)', start_b - exec_b)]
        else:
            woken_a = first(tool_a, exit_a, 'out', (PPOLL, POLL))
            release = first(tool_a, exit_a, 'in', (SENDTO,))
            if None in (woken_a, release):
                skipped['steps not found'] += 1
                continue
            reply = first(tool_a, release, 'out', (RECVFROM,), ret=lambda n: n > 0)
            redis_read = first(redis_pid, release, 'out', (READ,), ret=lambda n: n > 0)
            redis_write = first(redis_pid, redis_read, 'in', (WRITE,)) if redis_read else None
            claim = first(tool_b, release, 'in', (SENDTO,))
            vfork = first(tool_b, claim, 'in', (VFORK,)) if claim else None
            if None in (reply, redis_read, redis_write, claim, vfork):
                skipped['steps not found'] += 1
                continue
            woken_b = last(tool_b, claim, 'out', (POLL, PPOLL), after=release)
            if woken_b is None:
                skipped['B was not blocked in BLPOP'] += 1
                continue
            if first(tool_b, claim, 'out', (POLL, PPOLL), before=vfork):
                skipped['B waited for an answer before the job'] += 1
                continue
            received = first(tool_b, woken_b, 'out', (RECVFROM,), ret=lambda n: n > 0)
            row = [('job A ends -> its exit begins', exit_a - end_a),
                   ('-> rlock A wakes (ppoll returns)', woken_a - exit_a),
                   ('-> rlock A sends the release', release - woken_a),
                   ('-> Redis reads it', redis_read - release),
                   ('-> Redis writes its first reply', redis_write - redis_read),
                   ('-> rlock B wakes (poll returns)', woken_b - redis_write),
                   ('-> rlock B reads the hand-off', received - woken_b),
                   ('-> rlock B sends its claim', claim - received),
                   ('-> rlock B vforks', vfork - claim),
                   ('-> job B execs', exec_b - vfork),
                   ('-> job B starts (its clock read)', start_b - exec_b),
                   ('(rlock A: release sent -> answer read)', reply - release)]
        row.append(('total: job A ends -> job B starts', start_b - end_a))
        for name, value in row:
            steps[name].append(value)
    count = len(steps.get('total: job A ends -> job B starts', []))
    print(f'{kind}: {count} of {len(sections) - 1} hand-offs'
          + (f' (left out: {", ".join(f"{k} {v}" for k, v in skipped.items())})' if skipped else ''))
    for name, values in steps.items():
        values.sort()
        print(f'  {name:42s} p50 {values[len(values) // 2] / 1000:7.1f} us'
              f'   p90 {values[len(values) * 9 // 10] / 1000:7.1f} us')


if __name__ == '__main__':
    main()
