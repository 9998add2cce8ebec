# SPDX-License-Identifier: MIT
"""Sentinel and Cluster topologies for the fault checker (run_checker.py --topology).

Each topology starts its redis-server processes (Sentinel runs as `redis-server FILE
--sentinel`) on free loopback ports under RUN_DIR/nodes/, gives rlock its URL, names the node
that owns a lock's key, and injects the failover faults:

  failover     Sentinel: SENTINEL FAILOVER mymaster. Not coordinated with the master: the
               deposed master stays a writable master until the sentinels reconfigure it
               (about 10 s), and what rlock wrote to it meanwhile is lost.
               Cluster: CLUSTER FAILOVER on a replica of the shard that holds a lock's slot.
               Coordinated: the master pauses its clients until the replica has caught up, so
               nothing acknowledged is lost.
  kill-master  SIGKILL of the (shard's) master after its replicas caught up under CLIENT PAUSE
               WRITE, so that the crash itself loses nothing; the replicas' failover follows
               (down-after-milliseconds / cluster-node-timeout), then the node restarts with
               its data (appendfsync always) and rejoins as a replica.
  pause-master SIGSTOP of the (shard's) master until a replica took over, then SIGCONT: the
               asynchronous failover of a hung or cut-off master, with what it loses (writes
               not yet replicated, and what clients still connected to the old master write
               there until it is demoted).

Whether a failover lost acknowledged writes is not assumed, it is read from Redis: once the
deposed master becomes a replica of the promoted one, it asks for a partial resynchronisation
from its own replication offset. "Successful partial resynchronization" means its whole
history as a master is a prefix of the promoted replica's (nothing lost); "Full resync" means
the promoted replica lacks writes the old master had acknowledged. A kill-master fault records
the replicas' catch-up instead (the restarted node cannot resynchronise partially: a restart
from the AOF starts a new replication ID). Each fault event carries `lost_writes` (true/false)
and the evidence; check_history.py excuses overlaps only under a failover that lost writes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

NS = 1_000_000_000
MASTER_NAME = "mymaster"


class RespError(Exception):
    pass


class Conn:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, port: int, timeout: float = 1.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(str(a).encode())}\r\n".encode() + str(a).encode() + b"\r\n" for a in args)
        self.sock.sendall(payload)
        reply = self.read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def read(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2].decode(errors="replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise ConnectionError(f"unexpected RESP type {line[:20]!r}")


def call(port: int, *args, timeout: float = 1.0):
    with Conn(port, timeout) as conn:
        return conn.command(*args)


def info(port: int, section: str = "replication") -> dict:
    fields = {}
    for line in call(port, "INFO", section).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value
    return fields


def cluster_info(port: int) -> dict:
    fields = {}
    for line in call(port, "CLUSTER", "INFO").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def try_info(port: int, section: str = "replication") -> dict:
    try:
        return info(port, section)
    except (OSError, RespError):
        return {}


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Node:
    def __init__(self, name: str, port: int, base: str, sentinel=False):
        self.name = name
        self.port = port
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "redis.conf")
        self.log = os.path.join(self.dir, "redis.log")
        self.sentinel = sentinel
        self.proc = None


class Topology:
    """What run_checker.Driver needs from a topology; the driver's event loop drives the
    nemesis generators (they yield run_checker's Sleep/Until)."""

    kinds = ("failover", "kill-master", "pause-master")

    def __init__(self, driver, sleep_cls, until_cls):
        self.d = driver
        self.Sleep = sleep_cls
        self.Until = until_cls
        self.base = os.path.join(driver.run_dir, "nodes")
        self.nodes: list[Node] = []
        self.state = ""  # what healthy() last saw missing, for messages
        self.last_look = 0
        self.last_healthy = False
        self.down: list[Node] = []  # killed by the nemesis, not restarted yet
        self.frozen: Node | None = None  # SIGSTOPped by the nemesis (pause-master)

    # --- processes ----------------------------------------------------------------------
    def spawn(self, node: Node):
        argv = [self.d.args.redis_server, node.conf] + (["--sentinel"] if node.sentinel else [])
        node.proc, _ = self.d.spawn_service(argv, node.log, "redis")

    def alive(self, node: Node) -> bool:
        return node.proc is not None and node.proc.pid in self.d.procs

    def wait_ping(self, nodes, timeout=10.0):
        deadline = time.monotonic() + timeout
        for node in nodes:
            while True:
                self.d.reap()
                if not self.alive(node):
                    raise RuntimeError(f"{node.name} (port {node.port}) did not start; see {node.log}")
                try:
                    if call(node.port, "PING", timeout=0.2) == "PONG":
                        break
                except (OSError, RespError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} (port {node.port}) does not answer; see {node.log}")
                time.sleep(0.01)

    def wait_healthy(self, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            self.d.reap()
            self.last_look = 0
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {timeout:.0f}s: {self.state}")
            time.sleep(0.05)

    def data_config(self, node: Node) -> str:
        return (f"port {node.port}\nbind 127.0.0.1\nprotected-mode no\ndir {node.dir}\ndaemonize no\n"
                "appendonly yes\nappendfsync always\nsave \"\"\n"
                "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\nrepl-diskless-load disabled\n")

    def until(self, predicate, timeout, every=0.02):
        """Until(predicate), asked at most every `every` seconds, with a node's failure to
        answer counting as "not yet"."""
        last = [0]

        def safe():
            t = time.monotonic_ns()
            if t - last[0] < every * NS:
                return False
            last[0] = t
            try:
                return predicate()
            except (OSError, RespError, RuntimeError, ValueError, StopIteration, IndexError, TypeError):
                return False
        return self.Until(safe, timeout)

    def heal(self):
        """Restarts what the nemesis left down or stopped (after an abort)."""
        if self.frozen is not None:
            self.d.kill_proc(self.frozen.proc, signal.SIGCONT)
            self.frozen = None
        for node in list(self.down):
            try:
                self.spawn(node)
            except OSError:
                pass
            self.down.remove(node)

    def healthy_now(self) -> bool:
        """healthy(), looked at no more than every 100 ms."""
        t = time.monotonic_ns()
        if t - self.last_look < NS // 10:
            return self.last_healthy
        self.last_look = t
        try:
            self.last_healthy = self.healthy()
        except (OSError, RespError, ValueError) as error:
            self.state = f"{type(error).__name__}: {error}"
            self.last_healthy = False
        return self.last_healthy

    def node_on(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def replica_offsets_caught_up(self, master: Node, replicas) -> bool:
        target = int(info(master.port)["master_repl_offset"])
        return all(int(try_info(r.port).get("master_repl_offset", -1)) >= target for r in replicas)

    def psync_outcome(self, node: Node, mark: int):
        """What the deposed master's log says since `mark` about its first resynchronisation
        with the promoted replica: (lost_writes, evidence) or None while it has not happened."""
        try:
            with open(node.log, "rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        request = ""
        for line in text.splitlines():
            if "Trying a partial resynchronization" in line:
                request = line.split("(request", 1)[-1].strip(" .)")
            elif "Successful partial resynchronization with master" in line:
                return False, f"partial resynchronisation accepted (request {request})"
            elif "Full resync from master" in line:
                return True, (f"partial resynchronisation refused (request {request}): "
                              f"{line.split('Full resync from master', 1)[1].strip(': ')}")
        return None

    def log_size(self, node: Node) -> int:
        try:
            return os.path.getsize(node.log)
        except OSError:
            return 0

    def dump_keys(self, path: str):
        """Every data node's role and rlock keys (type, TTL, value), for a post-mortem."""
        with open(path, "w") as out:
            for node in self.nodes:
                if node.sentinel:
                    continue
                try:
                    with Conn(node.port, 1.0) as conn:
                        role = conn.command("ROLE")
                        out.write(f"== {node.name} port {node.port}: {role[0]} {role[1:3] if role[0] == 'slave' else ''}\n")
                        cursor = "0"
                        while True:
                            cursor, keys = conn.command("SCAN", cursor, "COUNT", "1000")
                            for key in sorted(keys):
                                kind = conn.command("TYPE", key)
                                pttl = conn.command("PTTL", key)
                                value = {"string": ("GET", key), "hash": ("HGETALL", key),
                                         "zset": ("ZRANGE", key, "0", "-1", "WITHSCORES"),
                                         "list": ("LRANGE", key, "0", "-1")}.get(kind)
                                shown = conn.command(*value) if value else ""
                                out.write(f"{key} {kind} pttl={pttl} {shown}\n")
                            if cursor == "0":
                                break
                except (OSError, RespError, ValueError) as error:
                    out.write(f"== {node.name} port {node.port}: {type(error).__name__}: {error}\n")

    # --- the nemesis ----------------------------------------------------------------------
    def fault(self, kind):
        d = self.d
        ready = yield self.until(lambda: d.stopping or self.healthy_now(), 90)
        if d.stopping:
            return
        if not ready:
            d.abort_reason = f"the {self.name} did not settle before a {kind} fault: {self.state}"
            return
        yield from d.arrange_long_jobs([d.rng.choice([s for s in d.slots if s.lock == lock]) for lock in d.locks])
        if d.stopping:
            return
        yield self.Sleep(d.rng.uniform(0.1, 0.4) * d.ttl)
        if kind == "failover":
            yield from self.fault_failover()
        elif kind == "kill-master":
            yield from self.fault_kill_master()
        else:
            yield from self.fault_pause_master()

    def fault_pause_master(self):
        """SIGSTOP of the (shard's) master, as a hung or cut-off master: the replicas fail over
        by themselves; then SIGCONT, and the old master, still a master with its data and its
        replication history, is demoted by the sentinels or the cluster and resynchronises, so
        its log tells whether the failover lost writes it had acknowledged (before the pause, or
        from clients still connected to it after it woke)."""
        d = self.d
        old, locks, lock = self.pause_target()
        mark = self.log_size(old)
        d.fault_active = True
        t_start = time.monotonic_ns()
        self.frozen = old
        d.kill_proc(old.proc, signal.SIGSTOP)
        if not (yield self.until(lambda: self.promoted_elsewhere(old, lock), 30)):
            d.abort_reason = f"pause-master {old.name}: no other master within 30s"
            return
        new = self.node_on(self.owner_of(lock))
        t_promoted = time.monotonic_ns()
        yield self.Sleep(d.rng.uniform(0.0, 1.0) * d.ttl)
        d.kill_proc(old.proc, signal.SIGCONT)
        self.frozen = None
        t_resumed = time.monotonic_ns()

        def demoted():
            r = try_info(old.port)
            return r.get("role") == "slave" and r.get("master_port") == str(new.port)
        if not (yield self.until(demoted, 40)):
            d.abort_reason = f"the paused master {old.name} did not become a replica of {new.name} within 40s"
            return
        t_heal = time.monotonic_ns()
        outcome = []
        yield self.until(lambda: outcome.append(self.psync_outcome(old, mark)) or outcome[-1] is not None, 20)
        lost, evidence = outcome[-1] if outcome[-1] is not None else (True, "no resynchronisation seen in the log")
        d.record_fault("pause-master", t_start, t_heal, lock=None, locks=locks, old=old.name, new=new.name,
                       promoted_ms=(t_promoted - t_start) // 1_000_000, resumed_ms=(t_resumed - t_start) // 1_000_000,
                       lost_writes=lost, evidence=evidence)
        d.say(f"pause-master {old.name} -> {new.name}{' (' + ', '.join(locks) + ')' if locks else ''}: "
              f"{'lost writes' if lost else 'nothing lost'} ({evidence})")


class SentinelTopology(Topology):
    name = "sentinel"

    def start(self):
        d = self.d
        ports = free_ports(6)
        self.data = [Node(n, ports.pop(), self.base) for n in ("master", "replica1", "replica2")]
        self.sentinels = [Node(f"sentinel{i}", ports.pop(), self.base, sentinel=True) for i in (1, 2, 3)]
        self.nodes = self.data + self.sentinels
        master = self.data[0]
        for node in self.data:
            with open(node.conf, "w") as f:
                f.write(self.data_config(node))
                if node is not master:
                    f.write(f"replicaof 127.0.0.1 {master.port}\n")
            self.spawn(node)
        self.wait_ping(self.data)
        for node in self.sentinels:
            with open(node.conf, "w") as f:
                f.write(f"port {node.port}\nbind 127.0.0.1\nprotected-mode no\ndir {node.dir}\ndaemonize no\n"
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 2\n"
                        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                        f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                        f"sentinel parallel-syncs {MASTER_NAME} 2\n")
            self.spawn(node)
        self.wait_ping(self.sentinels)
        self.wait_healthy(60, "Sentinel (a master, 2 replicas, 3 sentinels)")
        d.say(f"sentinel: master {master.port}, replicas {self.data[1].port} {self.data[2].port}, "
              f"sentinels {' '.join(str(s.port) for s in self.sentinels)}")

    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{MASTER_NAME}"

    def describe(self) -> dict:
        return {"data": {n.name: n.port for n in self.data}, "sentinels": [s.port for s in self.sentinels]}

    def named_masters(self):
        names = []
        for s in self.sentinels:
            try:
                reply = call(s.port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
                names.append(int(reply[1]) if reply else None)
            except (OSError, RespError):
                names.append(None)
        return names

    def master_port(self) -> int:
        names = [n for n in self.named_masters() if n is not None]
        best = max(set(names), key=names.count) if names else None
        if best is None:
            raise RuntimeError("no sentinel names a master")
        return best

    def key_owner(self, lock: str) -> int:
        return self.master_port()

    def pause_target(self):
        return self.node_on(self.master_port()), None, None

    def owner_of(self, lock) -> int:
        return self.named_masters()[0]

    def promoted_elsewhere(self, old: Node, lock) -> bool:
        names = self.named_masters()
        return (len(set(names)) == 1 and names[0] not in (None, old.port)
                and try_info(names[0]).get("role") == "master")

    def healthy(self) -> bool:
        names = self.named_masters()
        if len(set(names)) != 1 or names[0] is None:
            self.state = f"the sentinels name {names}"
            return False
        master = self.node_on(names[0])
        if not self.alive(master):
            self.state = f"the named master {master.name} is down"
            return False
        fields = try_info(master.port)
        online = sum(1 for k, v in fields.items() if k.startswith("slave") and k[5:].isdigit() and "state=online" in v)
        if fields.get("role") != "master" or online != 2:
            self.state = f"master {master.name}: role {fields.get('role')}, {online} of 2 replicas online"
            return False
        for node in self.data:
            if node is master:
                continue
            r = try_info(node.port)
            if r.get("role") != "slave" or r.get("master_port") != str(master.port) or r.get("master_link_status") != "up":
                self.state = f"{node.name}: role {r.get('role')}, master_port {r.get('master_port')}, link {r.get('master_link_status')}"
                return False
        for s in self.sentinels:
            flags = dict(zip(*[iter(call(s.port, "SENTINEL", "master", MASTER_NAME))] * 2)).get("flags", "")
            if flags != "master":
                self.state = f"{s.name}: master flags {flags}"
                return False
            good = 0
            for record in call(s.port, "SENTINEL", "replicas", MASTER_NAME):
                rec = dict(zip(record[::2], record[1::2]))
                if "s_down" not in rec.get("flags", "") and "disconnected" not in rec.get("flags", "") \
                        and rec.get("master-link-status") == "ok":
                    good += 1
            others = sum(1 for record in call(s.port, "SENTINEL", "sentinels", MASTER_NAME)
                         if "s_down" not in dict(zip(record[::2], record[1::2])).get("flags", ""))
            if good != 2 or others != 2:
                self.state = f"{s.name}: {good} of 2 good replicas, {others} of 2 other sentinels"
                return False
        self.state = "healthy"
        return True

    def fault_failover(self):
        d = self.d
        old = self.node_on(self.master_port())
        mark = self.log_size(old)
        d.fault_active = True
        t_start = time.monotonic_ns()
        answers = []

        def ask():
            for s in self.sentinels:
                try:
                    reply = call(s.port, "SENTINEL", "FAILOVER", MASTER_NAME)
                except RespError as error:
                    reply = str(error)
                except OSError as error:
                    reply = f"{type(error).__name__}"
                answers.append(reply)
                if reply == "OK":
                    return True
            return False
        if not (yield self.until(ask, 20)):
            d.abort_reason = f"SENTINEL FAILOVER refused: {answers[-3:]}"
            return
        lost = None

        def promoted():
            names = self.named_masters()
            return (len(set(names)) == 1 and names[0] not in (None, old.port)
                    and try_info(names[0]).get("role") == "master")
        if not (yield self.until(promoted, 30)):
            d.abort_reason = f"SENTINEL FAILOVER from {old.name}: no new master within 30s: {self.named_masters()}"
            return
        new = self.node_on(self.named_masters()[0])
        t_promoted = time.monotonic_ns()

        # The split ends when the deposed master turns replica (the sentinels wait ~8 s).
        def demoted():
            r = try_info(old.port)
            return r.get("role") == "slave" and r.get("master_port") == str(new.port)
        if not (yield self.until(demoted, 40)):
            d.abort_reason = f"the deposed master {old.name} did not become a replica within 40s"
            return
        t_heal = time.monotonic_ns()
        outcome = []
        yield self.until(lambda: outcome.append(self.psync_outcome(old, mark)) or outcome[-1] is not None, 20)
        lost, evidence = outcome[-1] if outcome[-1] is not None else (True, "no resynchronisation seen in the log")
        d.record_fault("failover", t_start, t_heal, lock=None, old=old.name, new=new.name,
                       promoted_ms=(t_promoted - t_start) // 1_000_000, lost_writes=lost, evidence=evidence)
        d.say(f"failover {old.name} -> {new.name}: {'lost writes' if lost else 'nothing lost'} ({evidence})")

    def fault_kill_master(self):
        d = self.d
        old = self.node_on(self.master_port())
        replicas = [n for n in self.data if n is not old]
        call(old.port, "CLIENT", "PAUSE", "5000", "WRITE")
        d.fault_active = True
        t_pause = time.monotonic_ns()
        caught_up = yield self.until(lambda: self.replica_offsets_caught_up(old, replicas), 4)
        offset = try_info(old.port).get("master_repl_offset")
        t_start = time.monotonic_ns()
        self.down.append(old)
        d.kill_proc(old.proc, signal.SIGKILL, by="nemesis")
        d.wait_gone(old.proc)

        def promoted():
            names = self.named_masters()
            return (len(set(names)) == 1 and names[0] not in (None, old.port)
                    and try_info(names[0]).get("role") == "master")
        if not (yield self.until(promoted, 30)):
            d.abort_reason = f"kill-master {old.name}: no new master within 30s: {self.named_masters()}"
            return
        t_heal = time.monotonic_ns()
        new = self.node_on(self.named_masters()[0])
        yield self.Sleep(d.rng.uniform(0.5, 1.5) * d.ttl)
        self.spawn(old)
        self.down.remove(old)
        evidence = (f"replicas caught up to offset {offset} under CLIENT PAUSE WRITE before SIGKILL"
                    if caught_up else f"replicas had NOT caught up to offset {offset} within 4s")
        d.record_fault("kill-master", t_start, t_heal, lock=None, old=old.name, new=new.name,
                       pause_ms=(t_start - t_pause) // 1_000_000, lost_writes=not caught_up, evidence=evidence)
        d.say(f"kill-master {old.name} -> {new.name}: {evidence}")


class ClusterTopology(Topology):
    name = "cluster"

    def start(self):
        d = self.d
        ports = free_ports(12)
        self.nodes = [Node(f"node{i}", ports.pop(), self.base) for i in range(1, 7)]
        for node in self.nodes:
            with open(node.conf, "w") as f:
                f.write(self.data_config(node))
                f.write(f"cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port {ports.pop()}\n"
                        f"cluster-node-timeout {d.args.cluster_node_timeout_ms}\n"
                        "cluster-replica-validity-factor 0\ncluster-allow-replica-migration no\n")
            self.spawn(node)
        self.wait_ping(self.nodes)
        cli = os.path.join(os.path.dirname(d.args.redis_server), "redis-cli")
        if not os.access(cli, os.X_OK):
            cli = "redis-cli"
        create = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                                 "--cluster-replicas", "1", "--cluster-yes"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        with open(os.path.join(self.base, "cluster-create.log"), "wb") as f:
            f.write(create.stdout)
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed; see {self.base}/cluster-create.log")
        self.wait_healthy(60, "Cluster (3 masters, 3 replicas)")
        d.say("cluster: masters " + " ".join(str(n.port) for n in self.nodes if try_info(n.port).get("role") == "master")
              + ", replicas " + " ".join(str(n.port) for n in self.nodes if try_info(n.port).get("role") == "slave"))

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def describe(self) -> dict:
        return {"nodes": [n.port for n in self.nodes]}

    def slot_masters(self):
        """[(first, last, master port)] from a live node's CLUSTER SLOTS."""
        for node in self.nodes:
            if not self.alive(node) or node is self.frozen:
                continue
            try:
                return [(r[0], r[1], int(r[2][1])) for r in call(node.port, "CLUSTER", "SLOTS")]
            except (OSError, RespError):
                continue
        raise RuntimeError("no node answers CLUSTER SLOTS")

    def key_slot(self, lock: str) -> int:
        key = f"{self.d.args.prefix}{{{lock}}}"
        for node in self.nodes:
            if self.alive(node) and node is not self.frozen:
                try:
                    return call(node.port, "CLUSTER", "KEYSLOT", key)
                except (OSError, RespError):
                    continue
        raise RuntimeError("no node answers CLUSTER KEYSLOT")

    def key_owner(self, lock: str) -> int:
        slot = self.key_slot(lock)
        return next(p for first, last, p in self.slot_masters() if first <= slot <= last)

    def healthy(self) -> bool:
        masters = []
        for node in self.nodes:
            if not self.alive(node):
                self.state = f"{node.name} is down"
                return False
            cluster = cluster_info(node.port)
            if cluster.get("cluster_state") != "ok" or cluster.get("cluster_slots_ok") != "16384":
                self.state = f"{node.name}: cluster_state {cluster.get('cluster_state')}, slots ok {cluster.get('cluster_slots_ok')}"
                return False
            r = info(node.port)
            if r.get("role") == "master":
                masters.append(node)
                online = sum(1 for k, v in r.items() if k.startswith("slave") and k[5:].isdigit() and "state=online" in v)
                if online != 1:
                    self.state = f"master {node.name}: {online} replicas online"
                    return False
            elif r.get("master_link_status") != "up":
                self.state = f"replica {node.name}: link {r.get('master_link_status')}"
                return False
        if len(masters) != 3:
            self.state = f"{len(masters)} masters"
            return False
        owners = {p for _, _, p in self.slot_masters()}
        if owners != {m.port for m in masters}:
            self.state = f"CLUSTER SLOTS names {sorted(owners)}, ROLE master: {sorted(m.port for m in masters)}"
            return False
        self.state = "healthy"
        return True

    def replica_of(self, master: Node) -> Node:
        for node in self.nodes:
            r = try_info(node.port)
            if r.get("role") == "slave" and r.get("master_port") == str(master.port):
                return node
        raise RuntimeError(f"{master.name} has no replica")

    def target(self):
        d = self.d
        lock = d.rng.choice(d.locks)
        old = self.node_on(self.key_owner(lock))
        locks = [lk for lk in d.locks if self.key_owner(lk) == old.port]
        return lock, old, self.replica_of(old), locks

    def pause_target(self):
        lock, old, _, locks = self.target()
        return old, locks, lock

    def owner_of(self, lock) -> int:
        return self.key_owner(lock)

    def promoted_elsewhere(self, old: Node, lock) -> bool:
        owner = self.key_owner(lock)
        return owner != old.port and try_info(owner).get("role") == "master"

    def fault_failover(self):
        d = self.d
        lock, old, replica, locks = self.target()
        mark = self.log_size(old)
        d.fault_active = True
        t_start = time.monotonic_ns()

        def switched():
            return (try_info(replica.port).get("role") == "master"
                    and try_info(old.port).get("role") == "slave"
                    and self.key_owner(lock) == replica.port)
        # A manual failover that the master does not take up times out after 5 s (seen once
        # soon after the replica's restart); an operator would ask again.
        for attempt in range(1, 4):
            reply = call(replica.port, "CLUSTER", "FAILOVER")
            if reply != "OK":
                d.abort_reason = f"CLUSTER FAILOVER on {replica.name}: {reply}"
                return
            if (yield self.until(switched, 10)):
                break
            d.say(f"CLUSTER FAILOVER {old.name} -> {replica.name}: not done within 10s (attempt {attempt})")
        else:
            d.abort_reason = f"CLUSTER FAILOVER {old.name} -> {replica.name} did not complete in 3 attempts"
            return
        t_heal = time.monotonic_ns()
        outcome = []
        yield self.until(lambda: outcome.append(self.psync_outcome(old, mark)) or outcome[-1] is not None, 20)
        lost, evidence = outcome[-1] if outcome[-1] is not None else (True, "no resynchronisation seen in the log")
        d.record_fault("failover", t_start, t_heal, lock=None, locks=locks, old=old.name, new=replica.name,
                       lost_writes=lost, evidence=evidence)
        d.say(f"failover {old.name} -> {replica.name} ({', '.join(locks)}): "
              f"{'lost writes' if lost else 'nothing lost'} ({evidence})")

    def fault_kill_master(self):
        d = self.d
        lock, old, replica, locks = self.target()
        call(old.port, "CLIENT", "PAUSE", "5000", "WRITE")
        d.fault_active = True
        t_pause = time.monotonic_ns()
        caught_up = yield self.until(lambda: self.replica_offsets_caught_up(old, [replica]), 4)
        offset = try_info(old.port).get("master_repl_offset")
        t_start = time.monotonic_ns()
        self.down.append(old)
        d.kill_proc(old.proc, signal.SIGKILL, by="nemesis")
        d.wait_gone(old.proc)

        def promoted():
            try:
                return try_info(replica.port).get("role") == "master" and self.key_owner(lock) == replica.port \
                    and cluster_info(replica.port).get("cluster_state") == "ok"
            except (OSError, RespError, RuntimeError, StopIteration):
                return False
        if not (yield self.until(promoted, 30)):
            d.abort_reason = f"kill-master {old.name}: {replica.name} not promoted within 30s"
            return
        t_heal = time.monotonic_ns()
        yield self.Sleep(d.rng.uniform(0.5, 1.5) * d.ttl)
        self.spawn(old)
        self.down.remove(old)
        evidence = (f"replica caught up to offset {offset} under CLIENT PAUSE WRITE before SIGKILL"
                    if caught_up else f"replica had NOT caught up to offset {offset} within 4s")
        d.record_fault("kill-master", t_start, t_heal, lock=None, locks=locks, old=old.name, new=replica.name,
                       pause_ms=(t_start - t_pause) // 1_000_000, lost_writes=not caught_up, evidence=evidence)
        d.say(f"kill-master {old.name} -> {replica.name} ({', '.join(locks)}): {evidence}")


TOPOLOGIES = {"sentinel": SentinelTopology, "cluster": ClusterTopology}


class QuorumTopology(Topology):
    """--topology quorum: five independent masters (appendonly yes, appendfsync always), rlock
    given each with its own --url (the Redlock of rlock(1), QUORUM). The node faults, each on
    one or two nodes at once (a majority of three always stays), healed node by node:

      node-stop              SIGSTOP for 0.2-2.5 TTL, then SIGCONT: a hung or cut-off node.
      node-restart-durable   SIGKILL, restarted from its AOF after 0-1.5 TTL: loses nothing.
      node-restart-volatile  SIGKILL, its data deleted, restarted empty only after 1.2-2 TTL:
                             the crash-recovery rule of rlock(1) (restart a node that lost its
                             data only after the longest TTL), so no lease it granted is alive.
      node-stop-restart      one node stopped and another restarted (with or without its data,
                             by the same rule), the windows overlapping.

    None of them may let two jobs overlap: a majority of the nodes that granted a lease still
    hold it. With --break-crash-recovery one more kind breaks the rule on purpose:

      node-wipe-granting     two nodes stopped, a long job takes the lock on the other three,
                             then one of those three is emptied at once (FLUSHALL: a restart
                             without its data, minus the downtime) and the two resumed: a
                             majority without the holder's key formed again. A
                             waiter may take the lock while the holder runs; what must hold is
                             the fence (check_history.py excuses the overlap, like a restart
                             that lost the data on one node, and checks that the newer holder's
                             fence is higher and that the resource refused the older holder's
                             later writes; the older holder may never learn of it, see
                             check_history.UNBOUNDED_KINDS)."""

    name = "quorum"
    kinds = ("node-stop", "node-restart-durable", "node-restart-volatile", "node-stop-restart")
    broken_kinds = ("node-wipe-granting",)
    size = 5

    def __init__(self, driver, sleep_cls, until_cls):
        super().__init__(driver, sleep_cls, until_cls)
        self.stopped: list[Node] = []  # SIGSTOPped by the nemesis, not resumed yet

    def start(self):
        ports = free_ports(self.size)
        self.nodes = [Node(f"node{i}", ports[i], self.base) for i in range(self.size)]
        for node in self.nodes:
            with open(node.conf, "w") as f:
                f.write(self.data_config(node))
            self.spawn(node)
        self.wait_ping(self.nodes)
        self.d.say("quorum: nodes " + " ".join(str(n.port) for n in self.nodes))

    def data_config(self, node: Node) -> str:
        return (f"port {node.port}\nbind 127.0.0.1\nprotected-mode no\ndir {node.dir}\ndaemonize no\n"
                "appendonly yes\nappendfsync always\nsave \"\"\n")

    def url(self) -> str:
        return " ".join(f"redis://127.0.0.1:{n.port}" for n in self.nodes)

    def url_args(self) -> list[str]:
        args = []
        for node in self.nodes:
            args += ["--url", f"redis://127.0.0.1:{node.port}"]
        return args

    def describe(self) -> dict:
        return {"nodes": [n.port for n in self.nodes]}

    def key_ports(self, lock) -> list[int]:
        """Where a pexpire fault expires the key: every node, a clock jump on all of them
        (on fewer than a majority the next renewal sets it again)."""
        return [n.port for n in self.nodes]

    def key_owner(self, lock) -> int:
        return self.nodes[0].port

    def healthy(self) -> bool:
        for node in self.nodes:
            if not self.alive(node) or node in self.stopped:
                self.state = f"{node.name} is down"
                return False
            if call(node.port, "PING", timeout=0.5) != "PONG":
                self.state = f"{node.name} does not answer PING"
                return False
        return True

    def heal(self):
        for node in list(self.stopped):
            self.d.kill_proc(node.proc, signal.SIGCONT)
            self.stopped.remove(node)
        super().heal()

    # --- node actions ---------------------------------------------------------------------
    def stop(self, node: Node):
        self.d.kill_proc(node.proc, signal.SIGSTOP)
        self.stopped.append(node)

    def resume(self, node: Node):
        self.d.kill_proc(node.proc, signal.SIGCONT)
        self.stopped.remove(node)

    def crash(self, node: Node, keep_data: bool):
        self.d.kill_proc(node.proc, signal.SIGKILL, by="nemesis")
        self.d.wait_gone(node.proc)
        self.down.append(node)
        if not keep_data:
            for name in os.listdir(node.dir):
                if name not in ("redis.conf", "redis.log"):
                    path = os.path.join(node.dir, name)
                    if os.path.isdir(path):
                        for sub in os.listdir(path):
                            os.unlink(os.path.join(path, sub))
                        os.rmdir(path)
                    else:
                        os.unlink(path)

    def restart(self, node: Node):
        self.spawn(node)
        self.down.remove(node)
        self.wait_ping([node])

    # --- the nemesis ----------------------------------------------------------------------
    def fault(self, kind):
        d = self.d
        ready = yield self.until(lambda: d.stopping or self.healthy_now(), 30)
        if d.stopping:
            return
        if not ready:
            d.abort_reason = f"the quorum did not settle before a {kind} fault: {self.state}"
            return
        if kind == "node-wipe-granting":
            yield from self.fault_wipe_granting(kind)
            return
        yield from d.arrange_long_jobs([d.rng.choice([s for s in d.slots if s.lock == lock]) for lock in d.locks])
        if d.stopping:
            return
        yield self.Sleep(d.rng.uniform(0.1, 0.4) * d.ttl)
        ttl = d.ttl
        count = 2 if kind == "node-stop-restart" else d.rng.choice((1, 2))
        targets = d.rng.sample(self.nodes, count)
        # (node, action, how long it lasts)
        plan = []
        for i, node in enumerate(targets):
            action = kind
            if kind == "node-stop-restart":
                action = "node-stop" if i == 0 else d.rng.choice(("node-restart-durable", "node-restart-volatile"))
            if action == "node-stop":
                plan.append((node, action, d.rng.uniform(0.2, 2.5) * ttl))
            elif action == "node-restart-durable":
                plan.append((node, action, d.rng.uniform(0.0, 1.5) * ttl))
            else:
                plan.append((node, action, d.rng.uniform(1.2, 2.0) * ttl))
        d.fault_active = True
        t_start = time.monotonic_ns()
        for node, action, _ in plan:
            if action == "node-stop":
                self.stop(node)
            else:
                self.crash(node, keep_data=action == "node-restart-durable")
        for node, action, lasts in sorted(plan, key=lambda p: p[2]):
            left = t_start + int(lasts * NS) - time.monotonic_ns()
            if left > 0:
                yield self.Sleep(left / NS)
            if action == "node-stop":
                self.resume(node)
            else:
                self.restart(node)
        d.record_fault(kind, t_start, time.monotonic_ns(), lock=None,
                       nodes=[{"port": n.port, "action": a, "ms": int(s * 1000)} for n, a, s in plan])

    def fault_wipe_granting(self, kind):
        """Breaks the crash-recovery rule (see the class comment): the overlap it may cause is
        for the fence to order."""
        d = self.d
        lock = d.rng.choice(d.locks)
        slot = d.rng.choice([s for s in d.slots if s.lock == lock])
        stopped = d.rng.sample(self.nodes, 2)
        granting = [n for n in self.nodes if n not in stopped]
        d.fault_active = True
        for node in stopped:
            self.stop(node)
        # The long job starts after the stop: it takes the lock on the three others only.
        ok = yield from d.arrange_long_jobs([slot])
        if not ok:
            for node in stopped:
                self.resume(node)
            d.fault_active = False
            d.say(f"{kind}: no long job came up on {lock}; skipped")
            return
        yield self.Sleep(d.rng.uniform(0.2, 0.4) * d.ttl)
        victim = d.rng.choice(granting)
        witness = next(n for n in granting if n is not victim)
        key = f"{d.args.prefix}{{{lock}}}"
        held_on = [n.port for n in granting if call(n.port, "EXISTS", key) == 1]
        # Right after one of the holder's renewals (its PTTL back near the TTL), so that its
        # next one, which would set the key again where it vanished, is a third of a TTL away:
        # the waiters' window.
        last = [d.ttl_ms]

        def just_renewed():
            pttl = call(witness.port, "PTTL", key)
            renewed = pttl > last[0]
            last[0] = pttl
            return renewed or pttl < 0
        yield self.until(just_renewed, 2 * d.ttl, every=0.002)
        # FLUSHALL: what a restart without its data leaves, without the time a restart takes,
        # during which the holder's renewals fail and it retries them at once.
        with Conn(victim.port, 2.0) as conn:
            t_start = time.monotonic_ns()
            conn.command("FLUSHALL")
            t_flushed = time.monotonic_ns()
            for node in stopped:
                self.resume(node)
        d.record_fault(kind, t_start, time.monotonic_ns(), lock=None, wiped=victim.port,
                       resumed=[n.port for n in stopped], held_on=held_on, flush_ms=(t_flushed - t_start) / 1e6,
                       holder_slot=slot.index,
                       holder_iter=slot.long_iter)


TOPOLOGIES["quorum"] = QuorumTopology
