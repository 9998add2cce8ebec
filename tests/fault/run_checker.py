#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""rlock fault checker: runs many `rlock exec` jobs against a real redis-server while a
seeded nemesis injects faults, then checks the recorded history.

WHAT IS GUARANTEED, AND SO WHAT IS CHECKED

A job is the worker program under one `rlock exec`; it writes a shared resource (a counter
in a journal file) through a fencing guard: the resource refuses a write whose fence is lower
than the highest fence it has seen. Stamps come from CLOCK_MONOTONIC on one host, so the
intervals of all processes compare exactly; a job's interval runs from its first instruction
to its last record.

 1. Exclusion, rlock's own promise: two jobs of one lock never run at the same time while
    the lease itself stays intact on the server. That covers SIGKILL of a holder's rlock,
    Redis restarts that keep their data (appendonly, appendfsync always), network delay,
    partition (blackhole) and reset, each shorter and longer than the lease margin. A job
    that loses its lease must receive its SIGTERM (and, being a well-behaved job, stop)
    before anyone else can take the lock: a lost-lease job's end must precede the next
    holder's start. Any overlap here is a violation.
 2. Three faults break the lease from outside, and no lease-based lock can keep exclusion
    under them: a holder paused past its TTL (SIGSTOP of rlock and job: a GC pause, a
    suspended VM), the key expiring early (PEXPIRE 1: a server clock jump) and a restart
    that loses Redis' data. There, two jobs may overlap, and what must still hold is
    fencing: the stale holder learns of the loss at rlock's next look (it is stopped within
    --loss-bound of the fault healing), and its writes after a newer holder reached the
    resource are rejected — counted as "stale writes rejected", never as overlaps. So:
    accepted writes ([admit, commit] of ok jobs) never overlap, their fences strictly
    increase, the counter equals the number of accepted writes, and no update is lost.
 3. Fences strictly increase with acquisition order and are never handed out twice for a
    lock — across Redis restarts with and without persistence too.
 4. No job outlives its rlock: a SIGKILLed rlock's job dies with it (PR_SET_PDEATHSIG), and
    no worker is left when the run ends.
 5. Progress: every lock sees an accepted write within --progress-timeout of each fault
    healing.
 6. rlock exits with documented statuses only (0, the job's own, 69, 75, 76), and with 76
    when it stopped its job for a lost lease.
 7. No orphan after a late reply: an acquire that took the lock on the server while its
    reply came after --io-timeout (rlock exits 69) leaves the lock free again within
    --io-timeout plus a second (the late-reply nemesis' probes; see fault_late_reply).
check_history.py implements the checks (and re-checks a kept run directory).

ON SENTINEL AND CLUSTER (--topology; topology.py starts the nodes and injects the failovers)
The same checks, with three more faults: `failover` (SENTINEL FAILOVER, or CLUSTER FAILOVER on
the replica of a lock's shard), `kill-master` (SIGKILL of the master after its replicas
caught up, a failover by the sentinels or the cluster, the node restarted with its data) and
`pause-master` (SIGSTOP of the master until a replica took over, then SIGCONT).
Replication is asynchronous: a failover can lose writes the old master acknowledged, and with
them a lease. The driver reads from Redis whether it did (the deposed master's partial
resynchronisation with the promoted replica is refused exactly when the replica lacks some of
its history) and records it; an overlap is excused only under a failover that lost writes, and
the job that lost its lock must still stop within --loss-bound of the failover healing (the
deposed master becoming a replica). Under a failover that lost nothing, any overlap is a
violation, as under every other fault. The proxy faults and the single node's restarts are left
out: rlock dials the nodes the topology announces, not the proxy.

ON A QUORUM (--topology quorum; topology.QuorumTopology)
Five independent masters, one --url each. The node faults stop (SIGSTOP) or restart (with the
AOF, or emptied, then only after 1.2-2 TTL: rlock(1)'s crash-recovery rule) one or two nodes at
once; none excuses an overlap. --break-crash-recovery adds node-wipe-granting, a node that
granted a running lease restarted empty at once: its overlaps are excused, and the fence must
order them.

HOW
The driver starts redis-server (appendonly yes, appendfsync always) on a free loopback port
in a temporary directory, rlock-fault-proxy in front of it, and --workers slots, each running
`rlock exec` of the worker in a loop on one of --locks locks, via the proxy. Faults come one
at a time; holder faults arrange for a long job to be running first. The schedule of fault
kinds, durations and targets follows --seed (printed at the start); the interleaving with the
jobs depends on timing, so a replay repeats the schedule, not every step. The run ends once
--min-sections accepted writes were made and every fault kind was injected
--min-faults-per-kind times, or at --duration. Every process the driver started is stopped
at the end, on failure and on Ctrl-C (the driver is their subreaper; redis and the proxy also
die with it); the run directory is removed unless --keep or the run failed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_history  # noqa: E402
import topology  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NS = 1_000_000_000
MS = 1_000_000

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

HOLDER_KINDS = ("kill", "stop", "pexpire")
ALL_KINDS = ("kill", "stop", "pexpire", "restart-durable-short", "restart-durable-long",
             "restart-volatile", "delay-short", "delay-long", "blackhole-short", "blackhole-long",
             "reset-short", "reset-long", "late-reply")
# --topology sentinel|cluster: rlock dials the nodes the topology announces, not the proxy, so
# the proxy's faults (delay, blackhole, reset, late-reply) and the single node's restarts give
# way to failovers; the holder faults stay (see topology.py).
TOPOLOGY_KINDS = ("kill", "stop", "pexpire", "failover", "kill-master", "pause-master")
# --topology quorum: five independent masters, each given to rlock with its own --url; the node
# faults stop and restart one or two of them at once (see topology.QuorumTopology). pexpire
# expires the key on every node.
QUORUM_KINDS = ("kill", "stop", "pexpire") + topology.QuorumTopology.kinds
# --limit N: expire the one permit whose holder has fence ARGV[1] (pexpire on a semaphore).
SEM_EXPIRE_PERMIT = """local n = 0
for _, t in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local meta = KEYS[1] .. ':' .. t
  if (redis.call('HGET', meta, 'f') or redis.call('HGET', meta, 'fence')) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', 1, t)
    redis.call('PEXPIRE', meta, 1)
    n = n + 1
  end
end
return n"""
# The late-reply nemesis' own lock, taken only by its probes (see fault_late_reply).
PROBE_LOCK = "faultprobe"
PROBES_PER_FAULT = 2

libc = ctypes.CDLL(None, use_errno=True)


def now() -> int:
    return time.monotonic_ns()


def parse_duration(text: str) -> float:
    """Seconds from '250ms', '2s', '1m', '1h' or a bare number of seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * scale
    return float(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(target, *args: str, timeout: float = 1.0):
    """One command over RESP, on a port or a connected socket; returns the reply's first
    line (b'+PONG', b':1', ...)."""
    if isinstance(target, int):
        with socket.create_connection(("127.0.0.1", target), timeout=timeout) as conn:
            return redis_command(conn, *args)
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    target.sendall(payload)
    data = b""
    while b"\r\n" not in data:
        chunk = target.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data.split(b"\r\n", 1)[0]


class Interrupted(Exception):
    pass


class Proc:
    __slots__ = ("pid", "role", "slot", "iter", "lock", "signaled_by", "stopped", "t_spawn", "t_exit", "status")

    def __init__(self, pid, role, slot=None, iteration=None, lock=None):
        self.pid = pid
        self.role = role
        self.slot = slot
        self.iter = iteration
        self.lock = lock
        self.signaled_by = None
        self.stopped = False
        self.t_spawn = now()
        self.t_exit = None
        self.status = None


class Sleep:
    def __init__(self, seconds):
        self.until = now() + int(seconds * NS)

    def poll(self):
        return (True, None) if now() >= self.until else (False, None)


class Until:
    def __init__(self, predicate, timeout):
        self.predicate = predicate
        self.deadline = now() + int(timeout * NS)

    def poll(self):
        if self.predicate():
            return True, True
        if now() >= self.deadline:
            return True, False
        return False, None


class Slot:
    def __init__(self, index, lock):
        self.index = index
        self.lock = lock
        self.iter = 0
        self.proc: Proc | None = None
        self.want_long = False
        self.long_iter = -1
        self.not_before = 0


class Driver:
    def __init__(self, args):
        self.args = args
        self.ttl = args.ttl
        self.ttl_ms = int(round(args.ttl * 1000))
        self.locks = [f"fault{n}" for n in range(args.locks)]
        self.rng = random.Random(args.seed)          # the nemesis' schedule
        self.work_rng = random.Random(args.seed + 1)  # per-job work times
        self.run_id = f"rlockfault{os.getpid()}x{args.seed}"
        self.procs: dict[int, Proc] = {}
        self.slots = [Slot(n, self.locks[n % len(self.locks)]) for n in range(args.workers)]
        self.running: dict[tuple[int, int], dict] = {}  # jobs with a B line and no E line yet
        self.ok_count = 0
        self.last_ok = {}
        self.fault_counts = {k: 0 for k in args.faults}
        self.fault_active = False
        self.last_heal = 0
        self.stopping = False
        self.abort_reason = None
        self.interrupted = False
        self.events_file = None
        self.history_buf = b""
        self.redis_proc: Proc | None = None
        self.proxy_proc: Proc | None = None
        self.redis_port = 0
        self.tls_port = 0  # --tls: redis-server's TLS port, which the proxy fronts
        self.proxy_port = 0
        self.run_dir = ""
        self.kind_cycle: list[str] = []
        self.topo = None  # --topology sentinel|cluster

    def rlock_url(self) -> str:
        """The URL rlock dials: the proxy, over TLS with --tls (verified, by IP literal); with
        --topology, the sentinels or the cluster's nodes."""
        if self.topo is not None:
            return self.topo.url()
        if self.args.tls:
            return f"rediss://127.0.0.1:{self.proxy_port}?cacert={self.run_dir}/certs/ca.crt"
        return f"redis://127.0.0.1:{self.proxy_port}"

    def url_args(self) -> list[str]:
        """rlock's --url option(s): one per node for --topology quorum."""
        if self.topo is not None and hasattr(self.topo, "url_args"):
            return self.topo.url_args()
        return ["--url", self.rlock_url()]

    # --- bookkeeping --------------------------------------------------------------------
    def event(self, **fields):
        fields.setdefault("t", now())
        self.events_file.write(json.dumps(fields) + "\n")
        self.events_file.flush()

    def say(self, message):
        elapsed = (now() - self.t0) / NS if hasattr(self, "t0") else 0.0
        print(f"[{elapsed:7.1f}s] {message}", flush=True)

    # --- processes ----------------------------------------------------------------------
    def spawn_service(self, argv, log_path, role, stdout_pipe=False):
        """fork+exec a helper that dies with the driver (PDEATHSIG) in its own process group."""
        read_end = write_end = None
        if stdout_pipe:
            read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != parent:
                    os._exit(1)
                null = os.open(os.devnull, os.O_RDONLY)
                log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.dup2(null, 0)
                os.dup2(write_end if stdout_pipe else log, 1)
                os.dup2(log, 2)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        proc = Proc(pid, role)
        self.procs[pid] = proc
        if stdout_pipe:
            os.close(write_end)
            return proc, read_end
        return proc, None

    def start_redis(self):
        redis_dir = os.path.join(self.run_dir, "redis")
        os.makedirs(redis_dir, exist_ok=True)
        for attempt in range(5):
            if not self.redis_port or attempt > 0:
                self.redis_port = free_port()
            conf = os.path.join(redis_dir, "redis.conf")
            if self.args.tls and (not self.tls_port or (attempt > 0 and not self.proxy_port)):
                self.tls_port = free_port()
            with open(conf, "w") as f:
                f.write(f"port {self.redis_port}\nbind 127.0.0.1\ndir {redis_dir}\n"
                        "appendonly yes\nappendfsync always\nsave \"\"\ndaemonize no\n"
                        "protected-mode yes\n")
                if self.args.tls:
                    # The driver keeps the plaintext port for its own commands; rlock goes
                    # through the proxy to the TLS port.
                    certs = os.path.join(self.run_dir, "certs")
                    f.write(f"tls-port {self.tls_port}\ntls-cert-file {certs}/server.crt\n"
                            f"tls-key-file {certs}/server.key\ntls-ca-cert-file {certs}/ca.crt\n"
                            "tls-auth-clients no\n")
            self.redis_proc, _ = self.spawn_service([self.args.redis_server, conf],
                                                    os.path.join(redis_dir, "redis.log"), "redis")
            deadline = now() + 10 * NS
            while now() < deadline:
                self.reap()
                if self.redis_proc is None:
                    break  # died: port taken?
                try:
                    if redis_command(self.redis_port, "PING", timeout=0.2) == b"+PONG":
                        return now()
                except OSError:
                    pass
                time.sleep(0.005)
            if self.redis_proc is not None:
                self.kill_proc(self.redis_proc, signal.SIGKILL)
                self.wait_gone(self.redis_proc)
            if self.proxy_port:
                break  # the proxy points at this port: do not move
        raise RuntimeError(f"redis-server did not start; see {redis_dir}/redis.log")

    def start_proxy(self):
        control = os.path.join(self.run_dir, "proxy.sock")
        argv = [self.args.proxy, "--listen", "127.0.0.1:0", "--backend",
                f"127.0.0.1:{self.tls_port if self.args.tls else self.redis_port}",
                "--control", control]
        self.proxy_proc, pipe = self.spawn_service(argv, os.path.join(self.run_dir, "proxy.log"), "proxy",
                                                   stdout_pipe=True)
        self.proxy_control = control
        line = b""
        deadline = time.monotonic() + 10
        os.set_blocking(pipe, False)
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            try:
                chunk = os.read(pipe, 100)
                if not chunk:
                    break
                line += chunk
            except BlockingIOError:
                time.sleep(0.005)
        os.close(pipe)
        if not line.startswith(b"port "):
            raise RuntimeError(f"rlock-fault-proxy did not start; see {self.run_dir}/proxy.log")
        self.proxy_port = int(line.split()[1])

    def proxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.proxy_control)
            s.sendall(command.encode() + b"\n")
            reply = s.recv(200).decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"proxy refused {command!r}: {reply}")
        return reply

    def kill_proc(self, proc: Proc, sig, by=None):
        if by and proc.signaled_by is None:
            proc.signaled_by = by
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait_gone(self, proc: Proc, timeout=10.0):
        deadline = now() + int(timeout * NS)
        while proc.pid in self.procs and now() < deadline:
            self.reap()
            time.sleep(0.001)
        return proc.pid not in self.procs

    def spawn_job(self, slot: Slot):
        args = self.args
        iteration = slot.iter
        slot.iter += 1
        long_job = slot.want_long
        if long_job:
            slot.want_long = False
            slot.long_iter = iteration
            work_us = int(self.rng.uniform(1.5, 3.0) * self.ttl * 1e6)
        else:
            work_us = self.work_rng.randint(0, args.work_us)
        argv = [args.rlock, *self.url_args(), "exec", slot.lock,
                "--ttl", f"{self.ttl_ms}ms", "-w", f"{int(args.wait * 1000)}ms",
                "--grace", f"{int(args.grace * 1000)}ms",
                *(["--limit", str(args.limit)] if args.limit else []), *args.rlock_arg, "--",
                args.worker, "--dir", self.run_dir, "--worker", str(slot.index), "--iter", str(iteration),
                "--work-us", str(work_us), "--run-id", self.run_id,
                *(["--semaphore"] if args.limit else [])]
        log = os.path.join(self.run_dir, f"rlock-{slot.index}.log")
        with open(log, "a") as f:
            f.write(f"--- w={slot.index} i={iteration} lock={slot.lock} t={now()}\n")
        pid = os.posix_spawn(args.rlock, argv, self.child_env, setpgroup=0, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2)])
        proc = Proc(pid, "rlock", slot.index, iteration, slot.lock)
        self.procs[pid] = proc
        slot.proc = proc
        self.event(ev="spawn", t=proc.t_spawn, slot=slot.index, iter=iteration, lock=slot.lock, pid=pid,
                   long=long_job, work_us=work_us)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            t = now()
            code = os.waitstatus_to_exitcode(status)
            proc = self.procs.pop(pid, None)
            if proc is None:
                self.event(ev="orphan", t=t, pid=pid, status=code)
            elif proc.role == "rlock":
                fields = dict(ev="exit", t=t, slot=proc.slot, iter=proc.iter, pid=pid, status=code)
                if proc.signaled_by:
                    fields["signaled_by"] = proc.signaled_by
                self.event(**fields)
                slot = self.slots[proc.slot]
                if slot.proc is proc:
                    slot.proc = None
                    # A script retrying an unreachable or busy lock would not spin: back off.
                    if code not in (0, 3):
                        slot.not_before = t + int(self.work_rng.uniform(0.01, 0.05) * NS)
                if code in (64, 78, 126, 127) and not self.stopping:
                    self.abort_reason = (f"rlock exited {code} (usage/config error); see "
                                         f"{self.run_dir}/rlock-{proc.slot}.log")
            elif proc.role == "redis":
                if proc is self.redis_proc:
                    self.redis_proc = None
                if proc.signaled_by is None and not self.stopping:
                    self.abort_reason = (f"redis-server exited by itself ({code}); see "
                                         f"{self.run_dir}/{'nodes/*' if self.topo else 'redis'}/redis.log")
            elif proc.role == "probe":
                proc.t_exit = t
                proc.status = code
            elif proc.role == "proxy":
                self.proxy_proc = None
                if proc.signaled_by is None:
                    self.abort_reason = f"rlock-fault-proxy exited by itself ({code}); see {self.run_dir}/proxy.log"

    def tail_history(self):
        data = self.history_reader.read()
        if not data:
            return
        data = self.history_buf + data
        lines = data.split(b"\n")
        self.history_buf = lines.pop()
        for raw in lines:
            line = raw.decode()
            rec = check_history.parse_kv(line)
            key = (rec.get("w"), rec.get("i"))
            if line.startswith("B"):
                self.running[key] = rec
            elif line.startswith("E"):
                self.running.pop(key, None)
                if rec.get("outcome") == "ok":
                    self.ok_count += 1
                    self.last_ok[rec["lock"]] = rec["t_commit"]

    # --- the nemesis --------------------------------------------------------------------
    def next_kind(self):
        if not self.kind_cycle:
            self.kind_cycle = list(self.args.faults)
            self.rng.shuffle(self.kind_cycle)
        return self.kind_cycle.pop()

    def long_job_running(self, slot: Slot):
        job = self.running.get((slot.index, slot.long_iter))
        return job is not None and slot.proc is not None and slot.proc.iter == slot.long_iter

    def arrange_long_jobs(self, slots):
        for slot in slots:
            slot.want_long = True
            slot.long_iter = -1
        ok = yield Until(lambda: self.stopping or any(self.long_job_running(s) for s in slots),
                         self.args.wait + 4 * self.ttl)
        for slot in slots:
            slot.want_long = False
        return bool(ok) and not self.stopping

    def record_fault(self, kind, t_start, t_heal, **fields):
        self.fault_counts[kind] += 1
        self.event(ev="fault", kind=kind, t_start=t_start, t_heal=t_heal, **fields)
        self.last_heal = t_heal
        self.fault_active = False

    def fault_holder(self, kind):
        lock = self.rng.choice(self.locks)
        candidates = [s for s in self.slots if s.lock == lock]
        slot = self.rng.choice(candidates)
        if not (yield from self.arrange_long_jobs([slot])):
            self.say(f"{kind}: no long job came up on {lock}; skipped")
            return
        yield Sleep(self.rng.uniform(0.2, 0.6) * self.ttl)
        job = self.running.get((slot.index, slot.long_iter))
        proc = slot.proc
        if job is None or proc is None or proc.iter != slot.long_iter:
            self.say(f"{kind}: the long job on {lock} ended early; skipped")
            return
        target = dict(lock=lock, slot=slot.index, iter=slot.long_iter, pid=proc.pid, job_pid=job["pid"])
        self.fault_active = True
        t_start = now()
        if kind == "kill":
            self.kill_proc(proc, signal.SIGKILL, by="nemesis")
            self.record_fault(kind, t_start, t_start, **target)
        elif kind == "pexpire" and self.args.limit:
            # A semaphore: the targeted holder's permit lapses at once (its score in
            # PREFIX{NAME}:permits set to 1 ms after the epoch, its meta hash PEXPIRE 1), the
            # permit's form of a key expiring early; the other holders keep theirs.
            key = f"{self.args.prefix}{{{lock}}}:permits"
            conn = socket.create_connection(("127.0.0.1", self.redis_port), timeout=2.0)
            try:
                t_start = now()
                reply = redis_command(conn, "EVAL", SEM_EXPIRE_PERMIT, "1", key, str(job["fence"])).decode()
                t_heal = now()
            finally:
                conn.close()
            self.record_fault(kind, t_start, t_heal, reply=reply, **target)
        elif kind == "pexpire":
            # Connected beforehand, so that the fault's window is the command alone.
            key = f"{self.args.prefix}{{{lock}}}"
            if self.topo is not None and hasattr(self.topo, "key_ports"):
                ports = self.topo.key_ports(lock)
            else:
                ports = [self.topo.key_owner(lock) if self.topo is not None else self.redis_port]
            conns = [socket.create_connection(("127.0.0.1", port), timeout=2.0) for port in ports]
            try:
                t_start = now()
                reply = " ".join(redis_command(conn, "PEXPIRE", key, "1").decode() for conn in conns)
                t_heal = now()
            finally:
                for conn in conns:
                    conn.close()
            self.record_fault(kind, t_start, t_heal, reply=reply, **target)
        elif kind == "stop":
            pids = [proc.pid, job["pid"]]
            proc.stopped = True
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            self.stopped_pids = pids
            pause = self.rng.uniform(1.5, 3.0) * self.ttl
            yield Sleep(pause)
            self.rng.shuffle(pids)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            proc.stopped = False
            self.stopped_pids = []
            self.record_fault(kind, t_start, now(), pause_ms=int(pause * 1000), **target)

    def fault_global(self, kind):
        yield from self.arrange_long_jobs([self.rng.choice([s for s in self.slots if s.lock == lock])
                                           for lock in self.locks])
        if self.stopping:
            return
        yield Sleep(self.rng.uniform(0.1, 0.4) * self.ttl)
        family = kind.split("-")[0]
        long_fault = kind.endswith("-long")
        self.fault_active = True
        if family == "restart":
            durable = kind != "restart-volatile"
            downtime = self.rng.uniform(1.2, 2.0) * self.ttl if long_fault else self.rng.uniform(0.0, 0.1) * self.ttl
            t_start = now()
            self.redis_down = True
            self.kill_proc(self.redis_proc, signal.SIGKILL, by="nemesis")
            self.wait_gone(self.redis_proc)
            if not durable:
                redis_dir = os.path.join(self.run_dir, "redis")
                for name in os.listdir(redis_dir):
                    if name not in ("redis.conf", "redis.log"):
                        path = os.path.join(redis_dir, name)
                        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            yield Sleep(downtime)
            t_up = self.start_redis()
            self.redis_down = False
            self.record_fault(kind, t_start, t_up, downtime_ms=int(downtime * 1000), lock=None)
            return
        if long_fault:
            duration = self.rng.uniform(1.2, 2.5) * self.ttl
        else:
            duration = self.rng.uniform(0.05, 0.15) * self.ttl
        params = {}
        if family == "delay":
            delay_ms = int((self.rng.uniform(0.4, 1.2) if long_fault else self.rng.uniform(0.02, 0.08)) * self.ttl_ms)
            duration = self.rng.uniform(1.0, 2.0) * self.ttl
            mode = f"delay {delay_ms}"
            params["delay_ms"] = delay_ms
        else:
            mode = family
        t_start = now()
        self.proxy_faulted = True
        self.proxy(mode)
        yield Sleep(duration)
        self.proxy("pass")
        self.proxy_faulted = False
        self.record_fault(kind, t_start, now(), duration_ms=int(duration * 1000), lock=None, **params)

    def redis_get(self, key):
        """GET on the server itself (not through the proxy): the value, or None."""
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2.0) as conn:
            conn.sendall(f"*2\r\n$3\r\nGET\r\n${len(key.encode())}\r\n{key}\r\n".encode())
            data = b""
            while True:
                header, sep, rest = data.partition(b"\r\n")
                if sep:
                    if not header.startswith(b"$"):
                        raise ConnectionError(f"unexpected reply to GET {key}: {header!r}")
                    size = int(header[1:])
                    if size < 0:
                        return None
                    if len(rest) >= size + 2:
                        return rest[:size].decode()
                chunk = conn.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk

    def fault_late_reply(self, kind):
        """Replies delayed past a probe's --io-timeout while commands pass at once: the probe's
        `exec -n` takes the lock on the server and gives up on the answer (exit 69). It must
        not leave the lock held by nobody: the lock key must be gone within --io-timeout plus
        a second of the probe's start (issue 11). The probes use a lock of their own with a
        long TTL, so that only rlock's clean-up, not the TTL, can free it in time; the workers
        see the same delay, well within their own --io-timeout, as a delay fault."""
        yield Sleep(self.rng.uniform(0.1, 0.4) * self.ttl)
        io_ms = self.args.probe_io_timeout_ms
        delay_ms = int(self.rng.uniform(2.0, 3.0) * io_ms)
        lock_key = f"{self.args.prefix}{{{PROBE_LOCK}}}"
        fence_key = lock_key + ":fence"
        if self.args.limit:
            # The probe's acquire is the first command rlock sends only when Redis knows the
            # script (EVALSHA; else NOSCRIPT, then the script itself): the workers of a --limit
            # run load only the semaphore scripts, so one probe without the delay loads the
            # mutex ones first, or no probe's acquire would reach Redis in time.
            warm = self.spawn_probe(io_ms)
            yield Until(lambda: warm.t_exit is not None, 10 + 2 * io_ms / 1000)
        self.fault_active = True
        self.proxy_faulted = True
        t_start = now()
        # Over TLS a new connection needs one round trip before it can send a command: let the
        # server's answer to each ClientHello (the client's first chunk) through at once.
        self.proxy(f"delay-replies {delay_ms} after 1" if self.args.tls else f"delay-replies {delay_ms}")
        for _ in range(PROBES_PER_FAULT):
            fence_before = self.redis_get(fence_key)
            proc = self.spawn_probe(io_ms)
            yield Until(lambda: proc.t_exit is not None, 10 + 2 * io_ms / 1000)
            bound = proc.t_spawn + (io_ms + 1000) * MS
            last_look = [0]

            def gone():
                if now() - last_look[0] < 5 * MS:
                    return False
                last_look[0] = now()
                return self.redis_get(lock_key) is None
            cleared = yield Until(gone, max(0.0, (bound - now()) / NS))
            t_gone = now() if cleared else None
            took_effect = self.redis_get(fence_key) != fence_before
            self.event(ev="late-reply", pid=proc.pid, t_spawn=proc.t_spawn, t_exit=proc.t_exit, status=proc.status,
                       took_effect=took_effect, t_gone=t_gone, bound_ms=io_ms + 1000, delay_ms=delay_ms)
            if not cleared:
                # Let the next probe start from a free lock; the violation is recorded.
                redis_command(self.redis_port, "DEL", lock_key, lock_key + ":meta")
        self.proxy("pass")
        self.proxy_faulted = False
        self.record_fault(kind, t_start, now(), delay_ms=delay_ms, lock=None)

    def spawn_probe(self, io_ms):
        args = self.args
        argv = [args.rlock, "--url", self.rlock_url(), "--io-timeout", f"{io_ms}ms",
                "exec", PROBE_LOCK, "-n", "--ttl", "60s", "--", "true"]
        log = os.path.join(self.run_dir, "rlock-probe.log")
        with open(log, "a") as f:
            f.write(f"--- probe t={now()}\n")
        pid = os.posix_spawn(args.rlock, argv, self.child_env, setpgroup=0, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2)])
        proc = Proc(pid, "probe")
        self.procs[pid] = proc
        return proc

    def nemesis(self):
        yield Sleep(min(2.0, 2 * self.ttl))
        while not self.stopping and self.args.faults:
            kind = self.next_kind()
            if kind in HOLDER_KINDS:
                yield from self.fault_holder(kind)
            elif kind == "late-reply":
                yield from self.fault_late_reply(kind)
            elif self.topo is not None and kind in self.topo.kinds + getattr(self.topo, "broken_kinds", ()):
                yield from self.topo.fault(kind)
            else:
                yield from self.fault_global(kind)
            if self.stopping:
                return
            healed = self.last_heal
            progressed = yield Until(lambda: self.stopping or all(self.last_ok.get(l, 0) > healed for l in self.locks),
                                     self.args.progress_timeout)
            if not progressed:
                self.abort_reason = (f"no accepted write on some lock within {self.args.progress_timeout}s "
                                     f"after a {kind} fault healed")
                return
            # Dense faults until every kind had its minimum, then room for the load to run.
            if all(n >= self.args.min_faults_per_kind for n in self.fault_counts.values()):
                yield Sleep(self.rng.uniform(1.0, 3.0) * self.ttl)
            else:
                yield Sleep(self.rng.uniform(0.2, 1.0) * self.ttl)

    # --- the run ----------------------------------------------------------------------
    def done(self) -> bool:
        elapsed = (now() - self.t_workload) / NS
        if elapsed >= self.args.duration:
            return True
        if self.ok_count < self.args.min_sections:
            return False
        return all(n >= self.args.min_faults_per_kind for n in self.fault_counts.values())

    def run(self) -> int:
        args = self.args
        self.t0 = now()
        self.run_dir = tempfile.mkdtemp(prefix="rlock-fault.", dir=args.tmpdir)
        if args.tls:
            certs = os.path.join(self.run_dir, "certs")
            os.makedirs(certs)
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "make_tls_certs.sh")
            subprocess.run(["bash", script, certs], check=True)
        self.history_path = os.path.join(self.run_dir, "history.log")
        open(self.history_path, "w").close()
        self.history_reader = open(self.history_path, "rb", buffering=0)
        self.events_file = open(os.path.join(self.run_dir, "events.jsonl"), "w")
        self.child_env = {k: v for k, v in os.environ.items()
                          if not k.startswith("RLOCK_") and k not in ("REDIS_URL", "REDISCLI_AUTH")}
        self.redis_down = False
        self.proxy_faulted = False
        self.stopped_pids = []
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.on_signal)

        print(f"rlock-fault: seed {args.seed} (replay the fault schedule with --seed {args.seed})")
        print(f"rlock-fault: rlock {args.rlock}, {args.workers} workers on {args.locks} locks, "
              f"ttl {self.ttl_ms}ms, topology {args.topology}, faults: {' '.join(args.faults)}")
        print(f"rlock-fault: run directory {self.run_dir}", flush=True)
        failed = True
        try:
            if args.topology == "single":
                self.start_redis()
                self.start_proxy()
            else:
                self.topo = topology.TOPOLOGIES[args.topology](self, Sleep, Until)
                self.topo.start()
            self.event(ev="config", seed=args.seed, ttl_ms=self.ttl_ms, locks=self.locks, workers=args.workers,
                       rlock=args.rlock, redis_port=self.redis_port, proxy_port=self.proxy_port,
                       topology=args.topology, nodes=self.topo.describe() if self.topo else None,
                       rlock_args=list(args.rlock_arg), limit=args.limit, failover_excuse=not args.no_failover_excuse,
                       loss_bound_ms=int(args.loss_bound * 1000), orphan_bound_ms=int(args.orphan_bound * 1000),
                       progress_timeout_ms=int(args.progress_timeout * 1000), faults=list(args.faults))
            self.workload()
            self.drain()
            failed = False
        except Interrupted:
            print("rlock-fault: interrupted; stopping everything", flush=True)
        except Exception as error:  # noqa: BLE001 - report, then clean up
            print(f"rlock-fault: error: {error}", flush=True)
        finally:
            self.cleanup()
        if failed:
            print(f"rlock-fault: run directory kept: {self.run_dir}")
            print("rlock-fault: FAIL (the run did not complete)")
            return 2

        report = check_history.check(self.run_dir)
        if self.abort_reason:
            report.violations.insert(0, f"run aborted: {self.abort_reason}")
        if self.ok_count < args.min_sections and not self.abort_reason:
            report.violations.append(f"only {self.ok_count} critical sections in {args.duration}s "
                                     f"(--min-sections {args.min_sections}): raise --duration")
        missing = [k for k, n in self.fault_counts.items() if n < args.min_faults_per_kind]
        if missing and not self.abort_reason:
            report.violations.append(f"fault kinds injected fewer than {args.min_faults_per_kind} times: "
                                     f"{', '.join(missing)}: raise --duration")
        print("rlock-fault: results")
        check_history.print_report(report)
        elapsed = (now() - self.t0) / NS
        if report.violations:
            print(f"rlock-fault: run directory kept: {self.run_dir}")
            print(f"rlock-fault: FAIL ({len(report.violations)} violations; seed {args.seed}; {elapsed:.0f}s)")
            return 1
        if args.keep:
            print(f"rlock-fault: run directory kept: {self.run_dir}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        faults = sum(self.fault_counts.values())
        print(f"rlock-fault: PASS ({self.ok_count} critical sections, {faults} faults, 0 violations; "
              f"seed {args.seed}; {elapsed:.0f}s)")
        return 0

    def on_signal(self, signum, frame):
        self.interrupted = True

    def check_interrupt(self):
        if self.interrupted:
            raise Interrupted()

    def workload(self):
        self.t_workload = now()
        self.event(ev="phase", phase="workload", t=self.t_workload)
        for lock in self.locks:
            self.last_ok[lock] = self.t_workload
        nemesis = self.nemesis()
        waiting = next(nemesis)
        nemesis_done = False
        last_report = now()
        while True:
            self.check_interrupt()
            self.reap()
            self.tail_history()
            if self.abort_reason:
                self.stopping = True
                break
            if not self.stopping and self.done():
                self.stopping = True
                self.say("workload done; letting the nemesis heal")
            if not self.stopping or not nemesis_done:  # load on until the last fault healed
                t = now()
                for slot in self.slots:
                    if slot.proc is None and t >= slot.not_before:
                        self.spawn_job(slot)
            if not nemesis_done:
                ready, value = waiting.poll()
                if ready:
                    try:
                        waiting = nemesis.send(value)
                    except StopIteration:
                        nemesis_done = True
            if self.stopping and nemesis_done:
                break
            if self.stopping and (now() - self.t_workload) / NS > self.args.duration + 6 * self.ttl + self.args.progress_timeout:
                self.abort_reason = "the nemesis did not finish its last fault"
                break
            # Progress without faults: every lock writes within the progress timeout.
            if not self.fault_active and not self.stopping:
                horizon = max(self.last_heal, self.t_workload)
                for lock in self.locks:
                    if now() - max(self.last_ok.get(lock, 0), horizon) > self.args.progress_timeout * NS:
                        self.abort_reason = f"no accepted write on {lock} for {self.args.progress_timeout}s"
            if now() - last_report > 10 * NS:
                last_report = now()
                self.say(f"{self.ok_count} critical sections; faults " +
                         " ".join(f"{k}:{n}" for k, n in self.fault_counts.items() if n))
            time.sleep(0.0005)
        self.heal_all()

    def heal_all(self):
        """Undo whatever fault is in progress (after an abort, or on cleanup)."""
        for pid in getattr(self, "stopped_pids", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped_pids = []
        if self.topo is not None:
            self.topo.heal()
        if self.proxy_proc is not None and self.proxy_faulted:
            try:
                self.proxy("pass")
            except (OSError, RuntimeError):
                pass
            self.proxy_faulted = False
        if self.redis_down and self.redis_proc is None and not self.interrupted:
            try:
                self.start_redis()
            except RuntimeError:
                pass
            self.redis_down = False

    def drain(self):
        """Lets running jobs end; stops waiters (an INT/TERM while waiting must leave no lock)."""
        t_drain = now()
        self.event(ev="phase", phase="drain", t=t_drain)
        self.say(f"draining: {sum(1 for s in self.slots if s.proc)} rlock processes left")
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and (slot.index, proc.iter) not in self.running:
                self.kill_proc(proc, signal.SIGTERM, by="cleanup")
        deadline = now() + int((4 * self.ttl + self.args.grace + 5) * NS)
        while any(p.role == "rlock" for p in self.procs.values()) and now() < deadline:
            self.check_interrupt()
            self.reap()
            self.tail_history()
            time.sleep(0.001)
        for proc in list(self.procs.values()):
            if proc.role == "rlock":
                self.say(f"rlock pid {proc.pid} (w={proc.slot} i={proc.iter}) still running after the drain; SIGTERM")
                self.kill_proc(proc, signal.SIGTERM, by="cleanup")
        deadline = now() + int((self.args.grace + 3) * NS)
        while any(p.role == "rlock" for p in self.procs.values()) and now() < deadline:
            self.reap()
            time.sleep(0.001)
        # Orphaned jobs are reaped by us (subreaper); give them a moment, then look for leftovers.
        end = now() + int(0.5 * NS)
        while now() < end:
            self.reap()
            time.sleep(0.01)
        for pid, cmd in self.leftovers():
            self.event(ev="leftover", pid=pid, cmd=cmd)
        self.tail_history()
        self.event(ev="phase", phase="end")

    def leftovers(self):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if self.run_id.encode() in cmd and os.path.basename(cmd[0].decode(errors="replace")) != "python3":
                found.append((int(entry), b" ".join(cmd).decode(errors="replace")[:200]))
        return found

    def cleanup(self):
        self.stopping = True
        if self.topo is not None:
            try:
                self.topo.dump_keys(os.path.join(self.run_dir, "nodes", "keys-at-end.txt"))
            except Exception:  # noqa: BLE001 - a post-mortem aid only
                pass
        try:
            self.heal_all()
        except Exception:  # noqa: BLE001
            pass
        for proc in list(self.procs.values()):
            if proc.role == "rlock":
                self.kill_proc(proc, signal.SIGCONT)
                self.kill_proc(proc, signal.SIGTERM, by="cleanup")
        deadline = now() + 3 * NS
        while any(p.role == "rlock" for p in self.procs.values()) and now() < deadline:
            self.reap()
            time.sleep(0.005)
        for proc in list(self.procs.values()):
            if proc.role == "rlock":
                self.kill_proc(proc, signal.SIGKILL, by="cleanup")
        for pid, _ in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in list(self.procs.values()):
            if proc.role in ("proxy", "redis"):
                self.kill_proc(proc, signal.SIGTERM, by="cleanup")
        deadline = now() + 5 * NS
        while self.procs and now() < deadline:
            self.reap()
            time.sleep(0.005)
        for proc in list(self.procs.values()):
            self.kill_proc(proc, signal.SIGKILL, by="cleanup")
        self.reap()
        if self.events_file:
            self.events_file.close()


def build_helpers(args):
    """Finds or builds rlock-fault-worker and rlock-fault-proxy."""
    for name, source, attr in (("rlock-fault-worker", "fault_worker.cpp", "worker"),
                               ("rlock-fault-proxy", "fault_proxy.cpp", "proxy")):
        if getattr(args, attr):
            continue
        candidates = [os.path.join(os.path.dirname(args.rlock), "tests", "fault", name),
                      os.path.join(os.path.dirname(args.rlock), name)]
        found = next((c for c in candidates if os.access(c, os.X_OK)
                      and os.path.getmtime(c) >= os.path.getmtime(os.path.join(HERE, source))), None)
        if found is None:
            out_dir = os.path.join(tempfile.gettempdir(), f"rlock-fault-bin-{os.getuid()}")
            os.makedirs(out_dir, exist_ok=True)
            found = os.path.join(out_dir, name)
            src = os.path.join(HERE, source)
            if not (os.access(found, os.X_OK) and os.path.getmtime(found) >= os.path.getmtime(src)):
                print(f"rlock-fault: building {name}", flush=True)
                tmp = f"{found}.{os.getpid()}"
                subprocess.run([os.environ.get("CXX", "g++"), "-std=c++20", "-O2", "-Wall", "-Wextra",
                                "-o", tmp, src], check=True)
                os.replace(tmp, found)
        setattr(args, attr, os.path.abspath(found))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Fault-injection checker for rlock exec (see the top of this file for what it proves).")
    parser.add_argument("--rlock", required=True, help="the rlock binary under test")
    parser.add_argument("--duration", type=parse_duration, default=None,
                        help="upper bound on the workload (default 600s; --soak: 2h)")
    parser.add_argument("--min-sections", type=int, default=None,
                        help="run until this many accepted critical sections (default 20000; --soak: 500000)")
    parser.add_argument("--min-faults-per-kind", type=int, default=None,
                        help="and until each fault kind was injected this often (default 2; --soak: 25)")
    parser.add_argument("--workers", type=int, default=None, help="concurrent rlock exec loops (default 6; --soak: 8)")
    parser.add_argument("--locks", type=int, default=None,
                        help="lock names the workers share (default 2; --topology cluster: 3, in two shards)")
    parser.add_argument("--seed", type=int, default=None, help="the nemesis' seed (default: random, printed)")
    parser.add_argument("--soak", action="store_true", help="a long run: more sections and faults")
    parser.add_argument("--ttl", type=parse_duration, default=1.0, help="lease length (default 1s)")
    parser.add_argument("--wait", type=parse_duration, default=20.0, help="rlock exec -w (default 20s)")
    parser.add_argument("--grace", type=parse_duration, default=2.0, help="rlock exec --grace (default 2s)")
    parser.add_argument("--work-us", type=int, default=500,
                        help="a job's work time is random in [0, N] microseconds (default 500)")
    parser.add_argument("--faults", default=None,
                        help="comma-separated fault kinds (default: all the topology's): single: " + ",".join(ALL_KINDS)
                        + "; sentinel, cluster: " + ",".join(TOPOLOGY_KINDS) + "; quorum: " + ",".join(QUORUM_KINDS))
    parser.add_argument("--topology", choices=("single", "sentinel", "cluster", "quorum"), default="single",
                        help="single: one redis-server behind the fault proxy (default); sentinel: a master, 2 "
                             "replicas and 3 sentinels; cluster: 3 masters and 3 replicas; quorum: 5 independent "
                             "masters, one --url each")
    parser.add_argument("--limit", type=int, default=0,
                        help="semaphores: rlock exec --limit N; checks that at most N jobs hold permits at once "
                             "(--topology single; default workers 2N on 1 lock)")
    parser.add_argument("--break-crash-recovery", action="store_true",
                        help="--topology quorum: add the node-wipe-granting fault, which restarts a node that "
                             "granted a running job's lease empty at once (against rlock(1)'s crash-recovery "
                             "rule): overlaps it causes are excused, and the fence must order them")
    parser.add_argument("--no-failover-excuse", action="store_true",
                        help="count every overlap under a failover as a violation, even one that lost writes "
                             "(for runs with --rlock-arg=--min-replicas=N, which promise that)")
    parser.add_argument("--cluster-node-timeout-ms", type=int, default=1500,
                        help="--topology cluster: cluster-node-timeout (default 1500)")
    parser.add_argument("--loss-bound", type=parse_duration, default=None,
                        help="a job whose lease was broken must stop within this after the fault heals "
                             "(default ttl + 500ms)")
    parser.add_argument("--orphan-bound", type=parse_duration, default=1.0,
                        help="a job must die within this after its rlock is SIGKILLed (default 1s)")
    parser.add_argument("--progress-timeout", type=parse_duration, default=None,
                        help="every lock must see a write within this after a fault heals (default max(10s, 5 ttl))")
    parser.add_argument("--prefix", default="rlock:", help="rlock's key prefix (default rlock:)")
    parser.add_argument("--probe-io-timeout-ms", type=int, default=300,
                        help="the late-reply nemesis' probes run with this --io-timeout (default 300)")
    parser.add_argument("--rlock-arg", action="append", default=[],
                        help="extra option for rlock exec (repeatable), e.g. --rlock-arg=--io-timeout=300ms")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    parser.add_argument("--worker", help="rlock-fault-worker binary (default: next to rlock, or built with g++)")
    parser.add_argument("--proxy", help="rlock-fault-proxy binary (default: next to rlock, or built with g++)")
    parser.add_argument("--tmpdir", default=None, help="where to create the run directory")
    parser.add_argument("--tls", action="store_true",
                        help="rlock talks TLS (rediss://, verified) to redis-server's TLS port through the proxy")
    parser.add_argument("--keep", action="store_true", help="keep the run directory even when the run passes")
    args = parser.parse_args(argv)

    soak = args.soak
    args.duration = args.duration if args.duration is not None else (7200.0 if soak else 600.0)
    args.min_sections = args.min_sections if args.min_sections is not None else (500_000 if soak else 20_000)
    args.min_faults_per_kind = args.min_faults_per_kind if args.min_faults_per_kind is not None else (25 if soak else 2)
    if args.limit < 0 or (args.limit and args.topology != "single"):
        parser.error("--limit needs N >= 1 and --topology single")
    if args.limit:
        # Semaphores: one name, twice as many workers as permits, so that some always wait.
        args.locks = args.locks if args.locks is not None else 1
        args.workers = args.workers if args.workers is not None else max(2, 2 * args.limit) * args.locks
    args.workers = args.workers if args.workers is not None else (8 if soak else 6)
    args.locks = args.locks if args.locks is not None else (3 if args.topology == "cluster" else 2)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    if args.loss_bound is None:
        args.loss_bound = args.ttl + 0.5
    if args.progress_timeout is None:
        # A failover that loses writes can leave tickets of waiters that were served on the
        # deposed master at the head of the promoted replica's waiting line; they lapse by the
        # line's timing, and the waiters behind them may sleep until their -w runs out (see
        # README.md): on a topology, progress is due within --wait plus 10s.
        args.progress_timeout = (max(10.0, 5 * args.ttl) if args.topology in ("single", "quorum")
                                 else max(5 * args.ttl, args.wait + 10))
    kinds = {"single": ALL_KINDS, "quorum": QUORUM_KINDS}.get(args.topology, TOPOLOGY_KINDS)
    if args.break_crash_recovery:
        if args.topology != "quorum":
            parser.error("--break-crash-recovery is for --topology quorum")
        kinds = kinds + topology.QuorumTopology.broken_kinds
    if args.faults is None:
        args.faults = ",".join(kinds)
    args.faults = [k.strip() for k in args.faults.split(",") if k.strip() and k.strip() != "none"]
    unknown = [k for k in args.faults if k not in kinds]
    if args.tls and args.topology != "single":
        parser.error("--tls is for --topology single")
    if unknown or args.workers < 1 or args.locks < 1 or args.locks > args.workers:
        parser.error(f"unknown fault kinds for --topology {args.topology}: {unknown}" if unknown
                     else "need 1 <= --locks <= --workers")
    args.rlock = os.path.abspath(args.rlock)
    if not os.access(args.rlock, os.X_OK):
        parser.error(f"not an executable: {args.rlock}")
    if not os.access(args.redis_server, os.X_OK):
        print(f"rlock-fault: error: redis-server not found ({args.redis_server}); install redis-server", file=sys.stderr)
        return 2
    build_helpers(args)
    return Driver(args).run()


if __name__ == "__main__":
    sys.exit(main())
