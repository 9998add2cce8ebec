#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Proves the checker can fail: synthetic histories, each with one planted fault, must be
rejected for the right reason; clean ones (including legitimate overlaps under a SIGSTOP
fault) must pass. Needs no rlock and no Redis. Exit status 0 when every case behaves."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_history  # noqa: E402

MS = 1_000_000


class History:
    """Builds a run directory the way the worker and the driver would have written it."""

    def __init__(self, ttl_ms=1000):
        self.lines = []
        self.journal = {}
        self.events = [{"ev": "config", "ttl_ms": ttl_ms, "progress_timeout_ms": 10_000},
                       {"ev": "phase", "phase": "workload", "t": 0}]
        self.counter = {}
        self.iters = {}

    def job(self, w, start_ms, end_ms, fence, lock="a", outcome="ok", stage="", admit_ms=None,
            commit_ms=None, pid=None, exit_status=None, write=True, counter=None, with_end=True,
            signaled_by=None):
        i = self.iters.get(w, 0)
        self.iters[w] = i + 1
        pid = pid or 10_000 + 100 * w + i
        t0, t1 = start_ms * MS, end_ms * MS
        admit = (admit_ms if admit_ms is not None else start_ms + 0.1) * MS
        commit = (commit_ms if commit_ms is not None else end_ms - 0.1) * MS
        self.events.append({"ev": "spawn", "t": int(t0 - MS), "slot": w, "iter": i, "lock": lock, "pid": pid - 1})
        self.lines.append((t0, f"B w={w} i={i} lock={lock} pid={pid} ppid={pid - 1} pgid={pid} fence={fence} t_start={int(t0)}\n"))
        prefix = f"E w={w} i={i} lock={lock} pid={pid} fence={fence} t_start={int(t0)}"
        if outcome == "ok" and write:
            n = counter if counter is not None else self.counter.get(lock, 0) + 1
            self.counter[lock] = n
            self.journal.setdefault(lock, []).append((commit, f"n={n} fence={fence} w={w} i={i} pid={pid} t={int(commit)}\n"))
            if with_end:
                self.lines.append((t1, f"{prefix} outcome=ok read={n - 1} wrote={n} t_admit={int(admit)} t_commit={int(commit)} t_end={int(t1)}\n"))
        elif outcome == "rejected_stale":
            self.lines.append((t1, f"{prefix} outcome=rejected_stale stage={stage or 'commit'} highest={fence + 1} t_admit={int(admit)} t_commit={int(commit)} t_end={int(t1)}\n"))
        elif outcome == "terminated":
            self.lines.append((t1, f"{prefix} outcome=terminated sig=15 stage=work t_end={int(t1)}\n"))
        if exit_status is None:
            exit_status = {"ok": 0, "rejected_stale": 3, "terminated": 76}.get(outcome, -9)
        event = {"ev": "exit", "t": int(t1 + MS), "slot": w, "iter": i, "pid": pid - 1, "status": exit_status}
        if signaled_by:
            event["signaled_by"] = signaled_by
        self.events.append(event)
        return (w, i, pid)

    def fault(self, kind, start_ms, heal_ms, **fields):
        self.events.append({"ev": "fault", "kind": kind, "t_start": start_ms * MS, "t_heal": heal_ms * MS, **fields})

    def write(self, directory, end_ms):
        self.events.append({"ev": "phase", "phase": "drain", "t": end_ms * MS})
        with open(os.path.join(directory, "history.log"), "w") as f:
            for _, line in sorted(self.lines, key=lambda x: x[0]):
                f.write(line)
        for lock, entries in self.journal.items():
            with open(os.path.join(directory, f"resource.{lock}"), "w") as f:
                for _, line in sorted(entries, key=lambda x: x[0]):
                    f.write(line)
        with open(os.path.join(directory, "events.jsonl"), "w") as f:
            for event in self.events:
                f.write(json.dumps(event) + "\n")


def sequential(h, count=5, start=0, fence=1, step=10, lock="a"):
    for k in range(count):
        h.job(k % 3, start + k * step, start + k * step + 5, fence + k, lock=lock)
    return start + count * step


def case_clean(h):
    sequential(h, 20)
    return 200


def case_overlap(h):
    end = sequential(h, 3)
    h.job(1, end, end + 8, 10)
    h.job(2, end + 4, end + 12, 11, admit_ms=end + 9, commit_ms=end + 11)  # starts while fence 10 runs
    return end + 20


def case_overlap_terminated(h):
    # A lost lease noticed too late: the old holder is stopped only after the new one started.
    end = sequential(h, 3)
    h.job(1, end, end + 30, 10, outcome="terminated")
    h.fault("blackhole", end + 2, end + 25, lock=None)
    h.job(2, end + 20, end + 40, 11)
    return end + 50


def case_stale_accepted(h):
    end = sequential(h, 3)
    h.job(1, end, end + 20, 10, admit_ms=end + 1, commit_ms=end + 19)
    h.job(2, end + 5, end + 10, 11, admit_ms=end + 6, commit_ms=end + 9)
    h.fault("stop", end + 2, end + 15, slot=1, iter=3, lock="a")
    return end + 30


def case_lost_update(h):
    end = sequential(h, 3)
    h.job(1, end, end + 5, 10, counter=3)  # writes 3 again: a lost update
    return end + 10


def case_stop_excused(h):
    # A holder paused past its lease: the next holder starts while it is frozen; on resume its
    # write is refused and rlock stops it at once. Legitimate: must pass.
    end = sequential(h, 3)
    h.job(1, end, end + 3005, 10, outcome="rejected_stale", stage="commit", admit_ms=end + 1, commit_ms=end + 3004)
    h.fault("stop", end + 2, end + 3000, slot=1, iter=1, lock="a")
    h.job(2, end + 1100, end + 1110, 11)
    h.job(0, end + 1200, end + 1210, 12)
    return end + 3100


def case_stop_too_long(h):
    end = sequential(h, 3)
    h.job(1, end, end + 6000, 10, outcome="terminated", admit_ms=end + 1)
    h.fault("stop", end + 2, end + 3000, slot=1, iter=1, lock="a")
    h.job(2, end + 1100, end + 1110, 11)
    return end + 6100


def case_fence_backwards(h):
    end = sequential(h, 3, fence=100)
    h.job(1, end, end + 5, 50, write=False, outcome="rejected_stale", stage="admit")
    return end + 10


def case_fence_reset_by_restart(h):
    end = sequential(h, 3, fence=100)
    h.fault("restart-volatile", end + 1, end + 50)
    h.job(1, end + 60, end + 65, 1, write=False, outcome="rejected_stale", stage="admit")
    h.job(2, end + 70, end + 75, 2, write=False, outcome="rejected_stale", stage="admit")
    return end + 80


def case_duplicate_fence(h):
    end = sequential(h, 3)
    h.job(1, end, end + 5, 3, write=False, outcome="rejected_stale", stage="admit")
    return end + 10


def case_ok_without_write(h):
    end = sequential(h, 3)
    h.lines.append(((end + 1) * MS, f"B w=9 i=0 lock=a pid=999 ppid=998 pgid=999 fence=50 t_start={(end + 1) * MS}\n"))
    h.lines.append(((end + 2) * MS, f"E w=9 i=0 lock=a pid=999 fence=50 t_start={(end + 1) * MS} outcome=ok read=3 wrote=4 t_admit={int((end + 1.1) * MS)} t_commit={int((end + 1.9) * MS)} t_end={(end + 2) * MS}\n"))
    return end + 10


def case_orphan(h):
    end = sequential(h, 3)
    w, i, pid = h.job(1, end, end + 5, 10, outcome="killed", write=False, exit_status=-9, signaled_by="nemesis")
    h.fault("kill", end + 2, end + 2, slot=w, iter=i, lock="a")
    h.events.append({"ev": "orphan", "t": (end + 2500) * MS, "pid": pid, "status": -9})
    h.job(2, end + 1000, end + 1005, 11)
    return end + 3000


def case_no_progress(h):
    end = sequential(h, 3)
    h.fault("blackhole", end, end + 100, lock=None)
    h.job(1, end + 15_000, end + 15_005, 10)
    return end + 15_010


def case_bad_exit(h):
    end = sequential(h, 3)
    h.job(1, end, end + 5, 10, exit_status=70)
    return end + 10


def case_terminated_wrong_exit(h):
    end = sequential(h, 3)
    h.job(1, end, end + 5, 10, outcome="terminated", write=False, exit_status=143)
    h.job(2, end + 10, end + 15, 11)
    return end + 20


def case_pexpire_excused(h):
    end = sequential(h, 3)
    h.job(1, end, end + 300, 10, outcome="terminated", admit_ms=end + 1)
    h.fault("pexpire", end + 50, end + 50, lock="a")
    h.job(2, end + 60, end + 70, 11)
    return end + 400


def quorum_split(h, kind, later_fence=11):
    # A node that granted the running holder's lease restarted empty (--topology quorum): a
    # waiter takes a majority while the holder runs; the holder's renewal then finds the lock
    # taken and stops it (76).
    end = sequential(h, 3)
    h.job(1, end, end + 400, 10, outcome="terminated", admit_ms=end + 1)
    h.fault(kind, end + 50, end + 55, lock=None)
    h.job(2, end + 100, end + 110, later_fence)
    return end + 500


def case_quorum_wipe_excused(h):
    return quorum_split(h, "node-wipe-granting")


def case_quorum_wipe_fence_backwards(h):
    return quorum_split(h, "node-wipe-granting", later_fence=9)


def case_quorum_rule_kept(h):
    return quorum_split(h, "node-restart-volatile")


def late_reply(h, end, took_effect=True, gone_after_ms=600, status=69):
    h.fault("late-reply", end, end + 700, lock=None)
    t_spawn = (end + 10) * MS
    h.events.append({"ev": "late-reply", "pid": 777, "t_spawn": t_spawn, "t_exit": t_spawn + 650 * MS,
                     "status": status, "took_effect": took_effect,
                     "t_gone": None if gone_after_ms is None else t_spawn + gone_after_ms * MS,
                     "bound_ms": 1300, "delay_ms": 700})


def case_late_reply_clean(h):
    end = sequential(h, 3)
    late_reply(h, end)
    h.job(1, end + 800, end + 805, 10)
    return end + 900


def case_late_reply_orphan(h):
    end = sequential(h, 3)
    late_reply(h, end, gone_after_ms=None)
    h.job(1, end + 800, end + 805, 10)
    return end + 900


def case_late_reply_vacuous(h):
    end = sequential(h, 3)
    late_reply(h, end, took_effect=False)
    h.job(1, end + 800, end + 805, 10)
    return end + 900


def failover_split(h, lost_writes, locks=None, ran_on_ms=200):
    # A holder on the deposed master renews there until the sentinels demote it (the heal);
    # a newcomer took the lock on the promoted replica meanwhile.
    end = sequential(h, 3)
    fields = {"lock": None, "lost_writes": lost_writes, "evidence": "planted"}
    if locks is not None:
        fields["locks"] = locks
    h.fault("failover", end + 50, end + 2000, **fields)
    h.job(1, end, end + 2000 + ran_on_ms, 10, outcome="terminated", admit_ms=end + 1)
    h.job(2, end + 1200, end + 1210, 11)
    return end + 4000


def case_failover_lost_excused(h):
    return failover_split(h, True)


def case_failover_nothing_lost(h):
    return failover_split(h, False)


def case_failover_other_shard(h):
    return failover_split(h, True, locks=["b"])


def case_failover_no_excuse(h):
    h.events[0]["failover_excuse"] = False
    return failover_split(h, True)


def case_failover_lost_too_long(h):
    return failover_split(h, True, ran_on_ms=3000)


def semaphore(h, rounds=3, holders=3, limit=3, start=0, fence=1):
    # `holders` jobs at once per round, staggered by 1 ms, commits in call order.
    h.events[0]["limit"] = limit
    t = start
    for _ in range(rounds):
        for k in range(holders):
            h.job(k, t + k, t + 10 + k, fence)
            fence += 1
        t += 20
    return t, fence


def case_sem_limit_held(h):
    return semaphore(h)[0] + 10


def case_sem_limit_exceeded(h):
    return semaphore(h, holders=4)[0] + 10


def case_sem_mutex_history_is_fine(h):
    # A limit of 3 accepts what a mutex would: one at a time.
    h.events[0]["limit"] = 3
    return sequential(h, 10)


def case_sem_stop_excused(h):
    # Three permits held; one holder paused past its TTL loses its permit, a fourth job takes
    # it; the paused one is stopped right after resuming. Legitimate: must pass.
    end, fence = semaphore(h, rounds=1)
    w, i, _ = h.job(3, end, end + 3005, fence, outcome="terminated")
    h.fault("stop", end + 2, end + 3000, slot=w, iter=i, lock="a")
    h.job(4, end + 1100, end + 1110, fence + 1, commit_ms=end + 1105)
    h.job(5, end + 1101, end + 1111, fence + 2, commit_ms=end + 1106)
    h.job(6, end + 1102, end + 1112, fence + 3, commit_ms=end + 1107)
    return end + 3100


def case_sem_stop_too_long(h):
    end, fence = semaphore(h, rounds=1)
    w, i, _ = h.job(3, end, end + 6000, fence, outcome="terminated")
    h.fault("stop", end + 2, end + 3000, slot=w, iter=i, lock="a")
    for k in range(3):
        h.job(4 + k, end + 1100 + k, end + 1110 + k, fence + 1 + k)
    return end + 6100


def sem_pexpire(h, target_other):
    # The nemesis lapses one holder's permit; a fourth job takes it. Excused for that holder
    # only: lapsing another job's permit excuses nothing.
    end, fence = semaphore(h, rounds=1)
    holders = [h.job(k, end + k, end + 300 + k, fence + k, outcome="terminated") for k in range(3)]
    if target_other:
        w, i = 0, 0  # a job of the first round, long gone
    else:
        w, i, _ = holders[1]
    h.fault("pexpire", end + 50, end + 50, slot=w, iter=i, lock="a")
    h.job(5, end + 60, end + 70, fence + 3)
    return end + 400


def case_sem_fence_backwards(h):
    end, fence = semaphore(h, rounds=1)
    h.job(0, end, end + 5, fence + 5)
    h.job(1, end + 3000, end + 3005, fence + 1)  # lower, well past a hand-off's window
    return end + 3100


def case_sem_fence_handoff(h):
    # A reservation's fence claimed after a newcomer's higher one: within the window, fine.
    end, fence = semaphore(h, rounds=1)
    h.job(0, end, end + 5, fence + 5)
    h.job(1, end + 200, end + 205, fence + 1)
    return end + 300


CASES = [
    # name, builder, expected to pass, words the first violation must contain
    ("clean history", case_clean, True, None),
    ("legit overlap: holder SIGSTOPped past its TTL", case_stop_excused, True, None),
    ("legit overlap: key expired early (PEXPIRE)", case_pexpire_excused, True, None),
    ("legit overlap: a failover that lost writes (split brain)", case_failover_lost_excused, True, None),
    ("overlap across a failover that lost nothing", case_failover_nothing_lost, False, "held the lock at once"),
    ("overlap across a lossy failover of another shard", case_failover_other_shard, False, "held the lock at once"),
    ("holder of a lossy failover not stopped after the heal", case_failover_lost_too_long, False, "ran on"),
    ("lossy failover under --no-failover-excuse", case_failover_no_excuse, False, "held the lock at once"),
    ("legit overlap: quorum node that granted the lease restarted empty at once", case_quorum_wipe_excused, True, None),
    ("quorum node restarted empty at once, fence not higher", case_quorum_wipe_fence_backwards, False,
     "fence went backwards"),
    ("overlap across a quorum node restart that kept the crash-recovery rule", case_quorum_rule_kept, False,
     "held the lock at once"),
    ("planted overlap of two ok jobs", case_overlap, False, "held the lock at once"),
    ("lost lease noticed after the next holder started", case_overlap_terminated, False, "held the lock at once"),
    ("stale write accepted", case_stale_accepted, False, "stale write"),
    ("lost update", case_lost_update, False, "lost update"),
    ("paused holder not stopped after resuming", case_stop_too_long, False, "ran on"),
    ("fence went backwards", case_fence_backwards, False, "fence went backwards"),
    ("fence counter lost by a restart", case_fence_reset_by_restart, False, "without persistence"),
    ("fence handed out twice", case_duplicate_fence, False, "handed out twice"),
    ("ok recorded without a write", case_ok_without_write, False, "not in resource"),
    ("job outlived its rlock", case_orphan, False, "outlived"),
    ("no progress after a fault healed", case_no_progress, False, "no accepted write"),
    ("rlock internal error", case_bad_exit, False, "unexpected exit 70"),
    ("job stopped but rlock did not exit 76", case_terminated_wrong_exit, False, "not 76"),
    ("late reply cleaned up", case_late_reply_clean, True, None),
    ("semaphore: 3 holders at once, limit 3", case_sem_limit_held, True, None),
    ("semaphore: 4 holders at once, limit 3", case_sem_limit_exceeded, False, "4 jobs held permits at once"),
    ("semaphore: one holder at a time", case_sem_mutex_history_is_fine, True, None),
    ("semaphore legit: a holder SIGSTOPped past its TTL, a fourth takes its permit", case_sem_stop_excused, True,
     None),
    ("semaphore: paused holder not stopped after resuming", case_sem_stop_too_long, False, "ran on"),
    ("semaphore legit: the holder's own permit lapsed early", lambda h: sem_pexpire(h, False), True, None),
    ("semaphore: another job's permit lapsed early excuses nothing", lambda h: sem_pexpire(h, True), False,
     "4 jobs held permits at once"),
    ("semaphore: fence went backwards beyond a hand-off", case_sem_fence_backwards, False, "fence went backwards"),
    ("semaphore: lower fence within a hand-off's window", case_sem_fence_handoff, True, None),
    ("late reply left an orphan", case_late_reply_orphan, False, "an orphan"),
    ("late-reply nemesis that tested nothing", case_late_reply_vacuous, False, "tested nothing"),
]


def main() -> int:
    failures = 0
    for name, build, should_pass, words in CASES:
        with tempfile.TemporaryDirectory(prefix="rlock-fault-selftest.") as directory:
            h = History()
            end = build(h)
            h.write(directory, end)
            report = check_history.check(directory)
            passed = not report.violations
            good = passed == should_pass
            if good and not should_pass and words and words not in report.violations[0]:
                good = any(words in v for v in report.violations)
            if good:
                detail = "passes" if passed else f"fails: {report.violations[0]}"
                print(f"ok   {name}: {detail}")
            else:
                failures += 1
                print(f"FAIL {name}: expected {'pass' if should_pass else 'violation with ' + repr(words)}, got:")
                buf = io.StringIO()
                check_history.print_report(report, out=buf)
                print("    " + buf.getvalue().replace("\n", "\n    "))
    print(f"checker self-test: {len(CASES) - failures}/{len(CASES)} cases behave")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
