"""A real Redis Cluster on loopback for the tests: Debian's ``redis-server`` in cluster mode.

``LocalCluster(root, masters=3, replicas=1).start()`` starts ``masters * (1 + replicas)``
``redis-server`` processes (``cluster-enabled yes``, each in its own directory under
``root``, append-only file fsynced on every write so a restarted node keeps what it
acknowledged), joins them with ``redis-cli --cluster create ... --cluster-yes`` and
waits until every node reports ``cluster_state:ok``. :meth:`LocalCluster.stop` ends
every process it started (SIGTERM, then SIGKILL) — the fixture calls it even when a
test fails, so no server outlives the session.

Ports: a node needs its client port P and its cluster-bus port P + 10000 free; both
are checked by binding them before use (another process may still race us, in which
case the node fails to start and the cluster start is retried on other ports).

Failover: ``cluster-node-timeout`` is short (:data:`NODE_TIMEOUT_MS`) so that a killed
master's replica is promoted within a couple of seconds.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
NODE_TIMEOUT_MS = 1500  # milliseconds before a silent master is failed over
START_TIMEOUT = 30.0  # seconds for the whole cluster to report ok
BUS_OFFSET = 10_000  # Redis Cluster's bus port is the client port + 10000


@dataclass
class Node:
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    root: Path
    masters: int = 3
    replicas: int = 1
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``QUAID_REDIS_URL`` of this cluster (every node listed: any one is enough to start)."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    def start(self, attempts: int = 3) -> LocalCluster:
        for attempt in range(attempts):
            try:
                return self._start_once(attempt)
            except (RuntimeError, redis.RedisError):
                self.stop()
                if attempt == attempts - 1:
                    raise
        return self

    def _start_once(self, attempt: int) -> LocalCluster:
        ports = free_port_pairs(self.masters * (1 + self.replicas))
        self.nodes = [Node(port, self.root / f"try{attempt}-node{port}") for port in ports]
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            _wait_ping(node)
        command = [REDIS_CLI, "--cluster", "create", *[n.address for n in self.nodes],
                   "--cluster-replicas", str(self.replicas), "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        self.wait_ok()
        return self

    def _launch(self, node: Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        log = open(node.directory / "redis.log", "ab")
        node.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(node.port), "--bind", "127.0.0.1", "--protected-mode", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(node.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--repl-diskless-sync-delay", "0",
             "--daemonize", "no", "--loglevel", "warning", "--unixsocket", ""],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def wait_ok(self, timeout: float = START_TIMEOUT) -> None:
        """Block until every live node says ``cluster_state:ok``, agrees on the slot owners, and
        every live replica has finished its sync with its master (else ``WAIT`` answers 0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [n for n in self.nodes if n.alive()]
            if all(_cluster_ok(n) and _replica_synced(n) for n in live) and self._one_owner_per_slot():
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok in time")

    def _one_owner_per_slot(self) -> bool:
        views = set()
        for node in self.nodes:
            if node.alive():
                try:
                    slots = node.client().execute_command("CLUSTER SLOTS")
                except redis.RedisError:
                    return False
                views.add(tuple(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots)))
        return len(views) == 1

    def client(self) -> RedisCluster:
        first = next(n for n in self.nodes if n.alive())
        return RedisCluster(host="127.0.0.1", port=first.port)

    def primaries(self) -> list[Node]:
        """The live nodes that currently serve slots as masters."""
        out = []
        for node in self.nodes:
            if node.alive():
                role = node.client().execute_command("ROLE")[0]
                if role in (b"master", "master"):
                    out.append(node)
        return out

    def node_of(self, key: str) -> Node:
        """The live master currently serving ``key``'s slot (as the live nodes see it)."""
        slot = key_slot(key.encode())
        first = next(n for n in self.nodes if n.alive())
        for start, end, master, *_ in first.client().execute_command("CLUSTER SLOTS"):
            if int(start) <= slot <= int(end):
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"no master serves slot {slot}")

    def kill(self, node: Node) -> None:
        """kill -9 one node (a crash: no shutdown save)."""
        if node.alive():
            node.process.kill()
            node.process.wait(timeout=10)

    def restart(self, node: Node) -> None:
        """Start a killed node again on its port and directory (it rejoins, as a replica if failed over)."""
        self._launch(node)
        _wait_ping(node)

    def flush(self) -> None:
        for node in self.primaries():
            node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports P whose P and P + 10000 are both free on 127.0.0.1 right now."""
    found: list[int] = []
    while len(found) < count:
        port = random.randint(20_000, 29_999)
        if port in found:
            continue
        if _free(port) and _free(port + BUS_OFFSET):
            found.append(port)
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ping(node: Node, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise RuntimeError(f"redis-server on port {node.port} exited: "
                               + (node.directory / "redis.log").read_text(errors="replace")[-2000:])
        try:
            if node.client().ping():
                return
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {node.port} does not answer")


def _replica_synced(node: Node) -> bool:
    try:
        info = node.client().info("replication")
    except redis.RedisError:
        return False
    return info.get("role") != "slave" or info.get("master_link_status") == "up"


def _cluster_ok(node: Node) -> bool:
    try:
        info = node.client().execute_command("CLUSTER INFO")
    except redis.RedisError:
        return False
    if isinstance(info, dict):  # redis-py parses CLUSTER INFO into a dict
        return info.get("cluster_state") == "ok"
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def all_keys(client: redis.Redis | RedisCluster, pattern: str = "*") -> list[bytes]:
    """Keys matching ``pattern`` on one server, or on every primary of a cluster (sorted)."""
    if isinstance(client, RedisCluster):
        return sorted(client.keys(pattern, target_nodes=RedisCluster.PRIMARIES))
    return sorted(client.keys(pattern))
