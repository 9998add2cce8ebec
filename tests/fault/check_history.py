#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks the history of a fault run (run_checker.py) against what rlock guarantees.

Usage: check_history.py RUN_DIR   (re-checks a run kept with run_checker.py --keep)

Inputs in RUN_DIR, all stamps CLOCK_MONOTONIC nanoseconds:
  history.log      B/E lines from rlock-fault-worker (one job = one `rlock exec`)
  resource.NAME    the journal each lock's protected resource keeps: one line per accepted
                   write, n=<counter after the write> fence=… w=… i=… t=…
  events.jsonl     the driver's log: config, spawns and exits of rlock, orphans it reaped,
                   faults with their start and heal stamps, phase changes

What is checked, and why (the same statement heads run_checker.py):

  A job's interval is [t_start, t_end] of the worker under one `rlock exec`: from its first
  instruction to its last record (or its death, as seen by the driver).

  1. Exclusion (rlock's lease): two jobs of the same lock never run at the same time, under
     any fault that leaves the lease itself intact on the server — SIGKILL of a holder's rlock,
     Redis restarts that keep their data (appendfsync always), network delay, partition and
     reset of any length. "A job learns it lost its lock before anyone else can take it" is
     this property for a job stopped by a lost lease: its SIGTERM comes before the next
     holder starts.
     Three faults break the lease from outside, and no lease can keep exclusion under them:
     a holder paused past its TTL (SIGSTOP, like a long GC pause or a suspended VM), the key
     expiring early (PEXPIRE 1, standing in for a server clock jump) and a restart that loses
     the data. An overlap is excused only when one of these hit the earlier job's lease, and
     then only if that job stopped within --loss-bound after the fault healed (rlock must
     notice at its next renewal).
  2. Fencing (what a resource can still rely on under those faults): the resource accepts a
     write only if its fence is at least the highest it has seen. So accepted writes form a
     sequence with strictly increasing fences and never overlap ([t_admit, t_commit]
     intervals of ok jobs are disjoint), every write by a holder whose lease was taken over
     after a newer holder reached the resource is rejected (counted as "stale writes
     rejected", not as an overlap), and the counter equals the number of accepted writes
     with no lost update (each write's n is the previous n + 1).
  3. Fences: strictly increasing in acquisition order (job start order; only an excusing
     fault may reorder two starts), never handed out twice for one lock — also across a
     Redis restart, with or without persistence.
  4. No job outlives its rlock: a worker orphaned by a SIGKILLed rlock is dead within
     --orphan-bound (PR_SET_PDEATHSIG), and no worker is left when the run ends.
  5. Progress: every lock sees an accepted write within --progress-timeout of the last
     fault affecting it healing (or of the previous write, when there was no fault).
  SEMAPHORES (run_checker.py --limit N, events.jsonl config limit=N): 1 becomes "at most N
     jobs of a name run at once", counting only jobs whose own permit no fault broke (the
     same three faults, a pexpire lapsing the targeted job's permit alone); an excused job
     that took the count past N must stop within --loss-bound of the heal. 2 is not checked
     (N holders write at once, with their own fences: the resource checks none, and the
     counter still shows no lost update); 3 checks unique fences, increasing in start order
     beyond a hand-off's window (HANDOFF_WINDOW).
  6. rlock's exit statuses are the documented ones (0, the job's 3, 69, 75, 76, or SIGKILL
     from the nemesis); a job stopped because its lease was lost makes rlock exit 76.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys

NS = 1_000_000_000
MS = 1_000_000

# node-wipe-granting (run_checker.py --topology quorum --break-crash-recovery): a node that
# granted a running lease restarted empty at once, against the crash-recovery rule; like
# restart-volatile, it may hand any lock to a second holder, and the fence must order them.
# The old holder need not even learn of it: when the newer holder came and went between two of
# its renewals, the next one finds the key missing on the emptied nodes and sets it again
# (rlock(1), QUORUM: Renew), so no --loss-bound applies; only the fence protects the resource.
UNSAFE_KINDS = ("stop", "pexpire", "restart-volatile", "node-wipe-granting")
UNBOUNDED_KINDS = ("node-wipe-granting",)
# Failovers (run_checker.py --topology sentinel|cluster) break leases from outside only when
# the promoted replica lacked writes the old master had acknowledged: the driver reads that
# from Redis and records it as lost_writes in each fault event (see topology.py).
FAILOVER_KINDS = ("failover", "kill-master", "pause-master")
# Expected rlock exit statuses: success (the worker's 0), the worker's "rejected" 3,
# unreachable, busy/wait ran out, lost.
EXPECTED_EXITS = {0, 3, 69, 75, 76}
# --limit: how long after a job started another may start with a lower fence (a hand-off's
# reservation, 2 s in rlock, claimed late), plus the slack of a loaded machine.
HANDOFF_WINDOW = 2500 * MS


def parse_kv(line: str) -> dict:
    record = {}
    for field in line.split()[1:]:
        key, _, value = field.partition("=")
        record[key] = int(value) if value.lstrip("-").isdigit() else value
    return record


class Run:
    """One `rlock exec` of the worker, as the history and the driver saw it."""

    __slots__ = ("key", "lock", "pid", "ppid", "fence", "t_start", "end", "outcome", "stage",
                 "t_end", "end_seen", "committed", "spawn", "exit", "orphan", "cleanup", "long")

    def __init__(self, key, b):
        self.key = key
        self.lock = b["lock"]
        self.pid = b["pid"]
        self.ppid = b["ppid"]
        self.fence = b["fence"]
        self.t_start = b["t_start"]
        self.end = None
        self.outcome = "killed"  # no E line: died of SIGKILL
        self.stage = ""
        self.t_end = None
        self.end_seen = False
        self.committed = None
        self.spawn = None
        self.exit = None
        self.orphan = None
        self.cleanup = False
        self.long = False

    def name(self) -> str:
        return f"job w={self.key[0]} i={self.key[1]} (pid {self.pid}, fence {self.fence})"


class Report:
    def __init__(self):
        self.violations: list[str] = []
        self.notes: list[str] = []
        self.figures: list[tuple[str, str]] = []

    def fail(self, message: str):
        self.violations.append(message)

    def figure(self, label: str, value):
        self.figures.append((label, str(value)))


def fmt_ms(ns) -> str:
    return "n/a" if ns is None else f"{ns / MS:.1f}ms"


def load(run_dir: str):
    events = []
    path = os.path.join(run_dir, "events.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    events.append(json.loads(line))
    runs: dict[tuple[int, int], Run] = {}
    problems = []
    with open(os.path.join(run_dir, "history.log")) as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith("\n"):
                problems.append(f"history.log:{lineno}: torn line {line!r}")
                continue
            kind = line[:1]
            rec = parse_kv(line)
            key = (rec.get("w"), rec.get("i"))
            if kind == "B":
                if key in runs:
                    problems.append(f"history.log:{lineno}: job w={key[0]} i={key[1]} started twice")
                    continue
                runs[key] = Run(key, rec)
            elif kind == "E":
                run = runs.get(key)
                if run is None or run.end is not None:
                    problems.append(f"history.log:{lineno}: E line without a single B line: {line.strip()}")
                    continue
                run.end = rec
                run.outcome = rec["outcome"]
                run.stage = rec.get("stage", "")
                run.t_end = rec["t_end"]
                run.end_seen = True
            else:
                problems.append(f"history.log:{lineno}: unknown record {line.strip()!r}")
    journals = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "resource.*"))):
        lock = os.path.basename(path)[len("resource."):]
        entries = []
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n") or not line.startswith("n="):
                    problems.append(f"{os.path.basename(path)}:{lineno}: torn or foreign line {line!r}")
                    continue
                rec = {}
                for field in line.split():
                    k, _, v = field.partition("=")
                    rec[k] = int(v)
                entries.append(rec)
        journals[lock] = entries
    return events, runs, journals, problems


def check(run_dir: str, loss_bound_ms=None, orphan_bound_ms=None, progress_timeout_ms=None,
          out=sys.stdout) -> Report:
    report = Report()
    events, runs, journals, problems = load(run_dir)
    for p in problems:
        report.fail(p)

    config = next((e for e in events if e["ev"] == "config"), {})
    ttl_ns = int(config.get("ttl_ms", 1000)) * MS
    loss_bound = (loss_bound_ms if loss_bound_ms is not None else config.get("loss_bound_ms", ttl_ns // MS + 500)) * MS
    orphan_bound = (orphan_bound_ms if orphan_bound_ms is not None else config.get("orphan_bound_ms", 1000)) * MS
    progress_timeout = (progress_timeout_ms if progress_timeout_ms is not None
                        else config.get("progress_timeout_ms", max(10_000, 4 * ttl_ns // MS))) * MS
    slack = 500 * MS  # acquisition to job start, on a loaded machine
    # run_checker.py --limit N: semaphores, up to N holders at once (see SEMAPHORES above).
    limit = int(config.get("limit") or 0)

    faults = [e for e in events if e["ev"] == "fault"]
    phases = {e["phase"]: e["t"] for e in events if e["ev"] == "phase"}
    t_begin = phases.get("workload", min((r.t_start for r in runs.values()), default=0))
    t_stop = phases.get("drain", max((r.t_start for r in runs.values()), default=0))

    # --- Join the driver's view (spawns, exits, orphans) to the jobs. -----------------------
    spawns = {(e["slot"], e["iter"]): e for e in events if e["ev"] == "spawn"}
    exits = {(e["slot"], e["iter"]): e for e in events if e["ev"] == "exit"}
    by_pid = collections.defaultdict(list)
    for run in runs.values():
        by_pid[run.pid].append(run)
        run.spawn = spawns.get(run.key)
        run.exit = exits.get(run.key)
        if run.spawn is not None:
            run.long = bool(run.spawn.get("long"))
        if run.exit is not None and run.exit.get("signaled_by") == "cleanup":
            run.cleanup = True
    for e in events:
        if e["ev"] != "orphan":
            continue
        candidates = [r for r in by_pid.get(e["pid"], []) if r.t_start <= e["t"]]
        if not candidates:
            continue  # an orphan that never wrote its B line
        run = max(candidates, key=lambda r: r.t_start)
        run.orphan = e
        if not run.end_seen:
            run.t_end = e["t"]

    # --- 2. The resource: accepted writes. ---------------------------------------------------
    total_ok = 0
    committed_without_record = 0
    for lock, journal in journals.items():
        prev_n, prev_fence, prev_t = 0, None, None
        for entry in journal:
            key = (entry["w"], entry["i"])
            if entry["n"] != prev_n + 1:
                report.fail(f"lost update on lock {lock}: counter went {prev_n} -> {entry['n']} "
                            f"(w={key[0]} i={key[1]} fence {entry['fence']}): two holders wrote at once")
            if not limit and prev_fence is not None and entry["fence"] <= prev_fence:
                report.fail(f"lock {lock}: accepted write with fence {entry['fence']} after one with "
                            f"fence {prev_fence} (w={key[0]} i={key[1]}): a stale write got through")
            prev_n, prev_fence, prev_t = entry["n"], entry["fence"], entry["t"]
            run = runs.get(key)
            if run is None:
                report.fail(f"lock {lock}: accepted write by unknown job w={key[0]} i={key[1]}")
                continue
            run.committed = entry
            if run.fence != entry["fence"] or run.lock != lock:
                report.fail(f"lock {lock}: journal and history disagree for {run.name()}")
            if run.end_seen and run.outcome != "ok":
                report.fail(f"{run.name()} committed but recorded outcome={run.outcome}")
            if not run.end_seen:
                committed_without_record += 1
        ok_records = sum(1 for r in runs.values() if r.lock == lock and r.outcome == "ok")
        no_record = sum(1 for r in runs.values() if r.lock == lock and r.committed and not r.end_seen)
        if ok_records + no_record != len(journal) or prev_n != len(journal):
            report.fail(f"lock {lock}: counter is {prev_n}, journal has {len(journal)} writes, "
                        f"history has {ok_records} ok jobs (+{no_record} killed after writing)")
        total_ok += len(journal)
    for run in runs.values():
        if run.outcome == "ok" and run.committed is None:
            report.fail(f"{run.name()} recorded ok but its write is not in resource.{run.lock}")

    # Accepted sections [t_admit, t_commit] never overlap, and no admission of a higher fence
    # precedes an accepted commit of a lower one.
    by_lock = collections.defaultdict(list)
    for run in runs.values():
        by_lock[run.lock].append(run)
    accepted_overlaps = 0
    for lock, lock_runs in by_lock.items():
        if limit:
            continue  # N holders write at once, and the resource checks no fence (fault_worker.cpp)
        sections = sorted((r.end["t_admit"], r.end["t_commit"], r) for r in lock_runs
                          if r.outcome == "ok" and r.end is not None)
        latest = None
        for t_admit, t_commit, run in sections:
            if latest is not None and t_admit < latest[1]:
                accepted_overlaps += 1
                report.fail(f"lock {lock}: accepted writes overlap: {latest[2].name()} "
                            f"[admit..commit] and {run.name()} overlap by {fmt_ms(latest[1] - t_admit)}")
            if latest is None or t_commit > latest[1]:
                latest = (t_admit, t_commit, run)
        admissions = sorted((r.end["t_admit"], r.fence, r) for r in lock_runs
                            if r.end is not None and "t_admit" in r.end
                            and not (r.outcome == "rejected_stale" and r.stage == "admit"))
        ok_commits = sorted((r.end["t_commit"], r.fence, r) for r in lock_runs
                            if r.outcome == "ok" and r.end is not None)
        highest, j = None, 0
        for t_commit, fence, run in ok_commits:
            while j < len(admissions) and admissions[j][0] < t_commit:
                if highest is None or admissions[j][1] > highest[1]:
                    highest = admissions[j]
                j += 1
            if highest is not None and highest[1] > fence:
                report.fail(f"lock {lock}: stale write accepted: {run.name()} committed after "
                            f"{highest[2].name()} had reached the resource")

    # --- 3. Fences. ------------------------------------------------------------------------
    # --no-failover-excuse (runs with --min-replicas): no failover excuses an overlap.
    failover_excuse = config.get("failover_excuse", True)
    unsafe = [f for f in faults if f["kind"] in UNSAFE_KINDS
              or (failover_excuse and f["kind"] in FAILOVER_KINDS and f.get("lost_writes") is not False)]

    def excusing_fault(earlier: Run, later_start: int):
        """The fault that broke `earlier`'s lease from outside, if any."""
        for f in unsafe:
            if f["kind"] in FAILOVER_KINDS:
                # A failover that lost writes: `earlier` held (or took the lock on the deposed
                # master) while the old master still answered, `later` started after it began.
                if f.get("locks") is not None and earlier.lock not in f["locks"]:
                    continue
                if earlier.t_start - slack <= f["t_heal"] and f["t_start"] <= later_start:
                    return f
            elif f["kind"] == "stop":
                if f.get("slot") == earlier.key[0] and f.get("iter") == earlier.key[1]:
                    return f
            elif f["kind"] == "pexpire" and limit:
                # A semaphore: the nemesis lapsed the one permit of the job it targeted.
                if (f.get("slot"), f.get("iter")) == earlier.key and f["t_start"] <= later_start:
                    return f
            elif f["kind"] == "pexpire":
                if f.get("lock") == earlier.lock and earlier.t_start - slack <= f["t_start"] <= later_start:
                    return f
            elif earlier.t_start - slack <= f["t_start"] <= later_start:
                return f  # restart-volatile: every lock
        return None

    volatile = [f for f in faults if f["kind"] == "restart-volatile"]
    fence_problems = 0
    for lock, lock_runs in by_lock.items():
        seen = {}
        duplicates = []
        for run in sorted(lock_runs, key=lambda r: r.t_start):
            if run.fence in seen:
                duplicates.append((seen[run.fence], run))
            else:
                seen[run.fence] = run
        if duplicates:
            fence_problems += len(duplicates)
            other, run = duplicates[0]
            cause = ""
            if any(other.t_start <= f["t_start"] <= run.t_start for f in volatile):
                cause = (" — a Redis restart without persistence lost the fence counter in between, "
                         "and the server's clock did not carry the fences past it")
            more = f" (and {len(duplicates) - 1} more fences)" if len(duplicates) > 1 else ""
            report.fail(f"lock {lock}: fence {run.fence} handed out twice: {other.name()} and "
                        f"{run.name()}{more}{cause}")
        ordered = sorted(lock_runs, key=lambda r: r.t_start)
        backwards = []
        if limit:
            # A semaphore's release reserves the freed permit, with its fence, for the first
            # waiter, who claims it up to the hand-off's 2 s later, while newcomers may take
            # other free permits with higher fences: start order is fence order only beyond
            # that window. A job's fence must exceed that of every job started more than
            # HANDOFF_WINDOW before it.
            top, k = None, 0
            for run in ordered:
                while k < len(ordered) and ordered[k].t_start < run.t_start - HANDOFF_WINDOW:
                    if top is None or ordered[k].fence > top.fence:
                        top = ordered[k]
                    k += 1
                if top is None or run.fence > top.fence or excusing_fault(run, top.t_start) is not None:
                    continue
                fence_problems += 1
                backwards.append(f"lock {lock}: fence went backwards in acquisition order: {top.name()} then "
                                 f"{run.name()}, {fmt_ms(run.t_start - top.t_start)} later")
            ordered = []
        for prev, run in zip(ordered, ordered[1:]):
            if run.fence > prev.fence or run.fence == prev.fence:
                continue  # equal: reported above
            if excusing_fault(run, prev.t_start) is not None:
                continue  # `run` acquired first but its lease was broken before its job started
            fence_problems += 1
            cause = ""
            if any(prev.t_start - slack <= f["t_start"] <= run.t_start for f in volatile):
                cause = (" — after a Redis restart without persistence: the fence counter was lost "
                         "with the data, so fencing tokens went back")
            backwards.append(f"lock {lock}: fence went backwards in acquisition order: {prev.name()} "
                             f"then {run.name()}{cause}")
        for message in backwards[:5]:
            report.fail(message)
        if len(backwards) > 5:
            report.fail(f"lock {lock}: ... and {len(backwards) - 5} more fences went backwards")

    def killed_by_nemesis(run: Run) -> bool:
        return run.exit is not None and run.exit.get("signaled_by") == "nemesis"

    # --- 1. Exclusion of jobs. -------------------------------------------------------------
    overlaps = 0
    excused = collections.Counter()  # fault kind -> jobs that overlapped a newer holder
    excused_jobs = set()
    worst_excused = 0
    unbounded_ends = 0

    def excuse(lock, prev: Run, f, run: Run, what: str):
        # `prev` overlapped `run` because fault `f` took its `what` (lease, permit): counted
        # once per job, and it must have stopped within the loss bound of the heal.
        nonlocal worst_excused
        if prev.key not in excused_jobs:
            excused_jobs.add(prev.key)
            excused[f["kind"]] += 1
        worst_excused = max(worst_excused, prev.t_end - run.t_start)
        late = prev.t_end - f["t_heal"]
        if late > loss_bound and f["kind"] not in UNBOUNDED_KINDS:
            report.fail(f"lock {lock}: {prev.name()} lost its {what} to a {f['kind']} fault but ran on "
                        f"{fmt_ms(late)} after it healed (bound {fmt_ms(loss_bound)})")
    lead_times = []  # lost-lock terminations: time from the job's end to the next holder's start
    for lock, lock_runs in by_lock.items() if limit else ():
        # Semaphores: when a job starts, the jobs still running plus itself hold permits. Those
        # whose permit a fault broke from outside (excusing_fault: their own SIGSTOP past the
        # TTL, the nemesis lapsing their own permit, a restart without persistence since they
        # started) are not counted; the others must be at most N. An excused job that made the
        # count exceed N must have stopped within --loss-bound of the fault's heal.
        active = []
        for run in sorted(lock_runs, key=lambda r: r.t_start):
            active = [p for p in active if p.t_end > run.t_start]
            counted, broken = [], []
            for prev in active:
                f = excusing_fault(prev, run.t_start)
                if f is None:
                    counted.append(prev)
                else:
                    broken.append((prev, f))
            if len(counted) + 1 > limit:
                overlaps += 1
                report.fail(f"lock {lock}: {len(counted) + 1} jobs held permits at once (limit {limit}): "
                            f"{run.name()} started while " + ", ".join(p.name() for p in counted) + " ran")
            if len(active) + 1 > limit:
                for prev, f in broken:
                    excuse(lock, prev, f, run, "permit")
            if run.t_end is None:
                unbounded_ends += 1
            else:
                active.append(run)
    for lock, lock_runs in by_lock.items() if not limit else ():
        active: list[Run] = []  # jobs that may still be running when the next one starts
        for run in sorted(lock_runs, key=lambda r: r.t_start):
            still = []
            for prev in active:
                if prev.t_end <= run.t_start:
                    # `run` is the first job to start after `prev` ended.
                    if prev.outcome == "terminated" and not prev.cleanup and not killed_by_nemesis(prev):
                        lead_times.append((run.t_start - prev.t_end, prev))
                    continue
                still.append(prev)
                f = excusing_fault(prev, run.t_start)
                if f is None:
                    overlaps += 1
                    report.fail(f"lock {lock}: two jobs held the lock at once: {prev.name()} ran on "
                                f"{fmt_ms(prev.t_end - run.t_start)} after {run.name()} started "
                                f"(outcomes {prev.outcome}/{run.outcome}, rlock exits "
                                f"{prev.exit and prev.exit.get('status')}/{run.exit and run.exit.get('status')})")
                    continue
                excuse(lock, prev, f, run, "lease")
            active = still
            if run.t_end is None:
                unbounded_ends += 1
            else:
                active.append(run)

    # --- 4. Orphans. -----------------------------------------------------------------------
    rlock_deaths = {}
    for e in events:
        if e["ev"] == "exit":
            rlock_deaths[(e["slot"], e["iter"])] = e["t"]
    worst_orphan = None
    for run in runs.values():
        if run.orphan is None:
            continue
        died = rlock_deaths.get(run.key)
        if died is None:
            continue
        outlived = run.orphan["t"] - died
        worst_orphan = outlived if worst_orphan is None else max(worst_orphan, outlived)
        if outlived > orphan_bound:
            report.fail(f"{run.name()} outlived its rlock by {fmt_ms(outlived)} (bound {fmt_ms(orphan_bound)})")
    for e in events:
        if e["ev"] == "leftover":
            report.fail(f"process {e['pid']} ({e.get('cmd', '?')}) was still alive after the run: a job outlived rlock")

    # --- 5. Progress. ------------------------------------------------------------------------
    def affects(f, lock):
        # A failover's `locks` are those of its shard, which may lose writes; while a cluster
        # master fails, though, every shard answers CLUSTERDOWN (cluster-require-full-coverage),
        # so for progress and for stopped jobs a failover affects every lock.
        if f["kind"] in FAILOVER_KINDS:
            return True
        return f.get("lock") in (None, lock)

    recovery = collections.defaultdict(int)  # kind -> worst time from heal to the next write
    worst_gap = 0
    for lock in sorted(set(by_lock) | set(journals)):
        commits = [e["t"] for e in journals.get(lock, [])]
        marks = [t_begin] + [t for t in commits if t_begin <= t <= t_stop] + [t_stop]
        lock_faults = [f for f in faults if affects(f, lock)]
        for a, b in zip(marks, marks[1:]):
            healed = [f for f in lock_faults if f["t_start"] < b and f["t_heal"] > a]
            since = max([a] + [min(f["t_heal"], b) for f in healed])
            gap = b - since
            worst_gap = max(worst_gap, gap)
            if gap > progress_timeout:
                cause = f" after a {healed[-1]['kind']} fault healed" if healed else ""
                report.fail(f"lock {lock}: no accepted write for {fmt_ms(gap)}{cause} "
                            f"(progress timeout {fmt_ms(progress_timeout)})")
        # Recovery: from the heal, or from the end of the jobs that were running through it
        # (the nemesis arranges long ones), to the first write by a job started afterwards.
        for f in lock_faults:
            free_from = max([f["t_heal"]] + [r.t_end for r in by_lock.get(lock, [])
                                             if r.t_start < f["t_heal"] and r.t_end is not None
                                             and r.t_end > f["t_heal"]])
            after = [r.committed["t"] for r in by_lock.get(lock, [])
                     if r.committed is not None and r.t_start >= free_from]
            if after:
                recovery[f["kind"]] = max(recovery[f["kind"]], min(after) - free_from)

    # Worst time to the next holder after a holder's rlock was SIGKILLed.
    worst_next = None
    for f in faults:
        if f["kind"] != "kill":
            continue
        later = [r.t_start for r in by_lock.get(f.get("lock"), []) if r.t_start > f["t_start"]]
        if later:
            gap = min(later) - f["t_start"]
            worst_next = gap if worst_next is None else max(worst_next, gap)

    # --- 6. rlock exit statuses. --------------------------------------------------------------
    statuses = collections.Counter()
    for e in events:
        if e["ev"] != "exit":
            continue
        status = e["status"]
        statuses[status] += 1
        if e.get("signaled_by"):
            continue
        if status not in EXPECTED_EXITS:
            what = f"signal {-status}" if status < 0 else f"exit {status}"
            report.fail(f"rlock (w={e['slot']} i={e['iter']}, pid {e['pid']}) ended with unexpected {what}; "
                        f"see rlock-{e['slot']}.log")
    for run in runs.values():
        if run.outcome == "terminated" and run.exit is not None and not run.exit.get("signaled_by") \
                and run.exit["status"] != 76:
            report.fail(f"{run.name()} was stopped (SIGTERM) but rlock exited {run.exit['status']}, not 76")

    # --- 7. No orphan after a late reply (issue 11): a probe whose acquire took the lock while
    # its reply came past --io-timeout exits 69 and leaves the lock free within --io-timeout
    # plus a second of its start. -------------------------------------------------------------
    probes = [e for e in events if e["ev"] == "late-reply"]
    probes_took = [e for e in probes if e.get("took_effect")]
    worst_probe_orphan = None
    for e in probes:
        if e["status"] != 69:
            report.fail(f"late-reply probe (pid {e['pid']}) exited {e['status']}, not 69; see rlock-probe.log")
        if e.get("t_gone") is None:
            report.fail(f"late-reply probe (pid {e['pid']}) left the lock held past its bound, --io-timeout plus "
                        f"a second, plus a delayed handshake or two over TLS ({e['bound_ms']}ms after its start): "
                        f"an orphan")
        elif e.get("took_effect"):
            lived = e["t_gone"] - e["t_spawn"]
            worst_probe_orphan = lived if worst_probe_orphan is None else max(worst_probe_orphan, lived)
    if any(f["kind"] == "late-reply" for f in faults) and not probes_took:
        report.fail("no late-reply probe's acquire took effect on the server: the nemesis tested nothing")

    # --- Figures. -------------------------------------------------------------------------
    outcomes = collections.Counter()
    for run in runs.values():
        outcomes[run.outcome + (f"/{run.stage}" if run.outcome == "rejected_stale" else "")] += 1
    kinds = collections.Counter(f["kind"] for f in faults)
    lost_per_kind = collections.Counter()
    for run in runs.values():
        if run.outcome != "terminated" or run.cleanup or killed_by_nemesis(run):
            continue
        for f in faults:
            if affects(f, run.lock) and f["t_start"] <= run.t_end <= f["t_heal"] + loss_bound:
                lost_per_kind[f["kind"]] += 1
                break
        else:
            lost_per_kind["(no fault)"] += 1
    duration = (t_stop - t_begin) / NS if t_stop > t_begin else 0.0
    safe_leads = [lt for lt, prev in lead_times if excusing_fault(prev, prev.t_end) is None]
    report.figure("critical sections (accepted writes)", f"{total_ok}" + (f" ({total_ok / duration:.0f}/s over {duration:.0f}s)" if duration else ""))
    for lock in sorted(journals):
        report.figure(f"  lock {lock}", len(journals[lock]))
    report.figure("jobs run", f"{len(runs)}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    report.figure("stale writes rejected", outcomes["rejected_stale/admit"] + outcomes["rejected_stale/commit"])
    report.figure("ok jobs whose rlock exited non-zero", sum(
        1 for r in runs.values() if r.outcome == "ok" and r.exit is not None and r.exit["status"] != 0
        and not r.exit.get("signaled_by")))
    report.figure("rlock exit statuses", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none")
    report.figure("faults injected", f"{len(faults)}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) if faults else "0")
    failovers = [f for f in faults if f["kind"] in FAILOVER_KINDS]
    if failovers or config.get("topology", "single") != "single":
        report.figure("topology", config.get("topology", "single"))
        report.figure("failovers (nothing lost / lost acknowledged writes)",
                      f"{len(failovers)} ({sum(1 for f in failovers if f.get('lost_writes') is False)} / "
                      f"{sum(1 for f in failovers if f.get('lost_writes') is not False)})")
    if limit:
        report.figure("semaphore limit", limit)
    report.figure("overlapping holds (violations)", overlaps)
    report.figure("overlapping accepted writes", accepted_overlaps)
    report.figure("fence order violations", fence_problems)
    report.figure("jobs overlapping a newer holder, excused by", ", ".join(f"{k} {v}" for k, v in sorted(excused.items())) or "0")
    report.figure("  longest excused overlap", fmt_ms(worst_excused) if excused else "n/a")
    report.figure("jobs stopped for a lost lease", sum(1 for r in runs.values() if r.outcome == "terminated"
                                                      and not r.cleanup and not killed_by_nemesis(r)))
    report.figure("  by the fault they followed", ", ".join(f"{k} {v}" for k, v in sorted(lost_per_kind.items())) or "n/a")
    report.figure("  least lead before the next holder (lease-safe faults)", fmt_ms(min(safe_leads)) if safe_leads else "n/a")
    report.figure("worst time to next holder after SIGKILL of a holder", fmt_ms(worst_next))
    report.figure("worst job outliving its SIGKILLed rlock", fmt_ms(worst_orphan))
    report.figure("worst time without progress after a heal", fmt_ms(worst_gap))
    report.figure("late-reply probes (exit 69, lock taken on the server, orphans left)",
                  f"{len(probes)}, {len(probes_took)}, "
                  f"{sum(1 for e in probes if e.get('t_gone') is None)}" if probes else "n/a")
    report.figure("  longest a probe's lock outlived its start", fmt_ms(worst_probe_orphan))
    report.figure("worst recovery (lock free again -> next write) per kind", ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(recovery.items())) or "n/a")
    if unbounded_ends:
        report.notes.append(f"{unbounded_ends} jobs without an observed end were left out of the overlap check")
    return report


def print_report(report: Report, out=sys.stdout, limit=40):
    width = max((len(label) for label, _ in report.figures), default=0)
    for label, value in report.figures:
        print(f"  {label:<{width}}  {value}", file=out)
    for note in report.notes:
        print(f"  note: {note}", file=out)
    for message in report.violations[:limit]:
        print(f"VIOLATION: {message}", file=out)
    if len(report.violations) > limit:
        print(f"... and {len(report.violations) - limit} more violations", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--loss-bound-ms", type=int)
    parser.add_argument("--orphan-bound-ms", type=int)
    parser.add_argument("--progress-timeout-ms", type=int)
    args = parser.parse_args(argv)
    report = check(args.run_dir, args.loss_bound_ms, args.orphan_bound_ms, args.progress_timeout_ms)
    print_report(report)
    if report.violations:
        print(f"rlock-fault: FAIL ({len(report.violations)} violations)")
        return 1
    print("rlock-fault: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
