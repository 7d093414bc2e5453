"""A real Valkey Cluster for the tests: six ``valkey-server`` processes on loopback, three primaries, three replicas."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from supportgate.store.server import ServerLifetime, find_server_binary

__all__ = ["ClusterNode", "ValkeyCluster", "every_key", "flush_everything"]

_SLOTS = 16384
_PRIMARIES = 3
# Small, so a replica takes over a dead primary within about two seconds.
NODE_TIMEOUT_MS = 1000


@dataclass
class ClusterNode:
    """One server of the cluster."""

    port: int
    bus_port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        """A client of this node alone."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=5)

    @property
    def alive(self) -> bool:
        """Whether its process still runs."""
        return self.process is not None and self.process.poll() is None


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback just now (each held until all are found, so they differ)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


class ValkeyCluster(ServerLifetime):
    """Six ``valkey-server`` processes made into one cluster; stopped (and their files kept) on exit."""

    def __init__(self, root: Path, *, binary: str | None = None, nodes: int = 6) -> None:
        self.root = root
        self.binary = binary or find_server_binary()
        self.nodes: list[ClusterNode] = []
        self._count = nodes

    @property
    def url(self) -> str:
        """A ``redis://`` URL naming one node (the service finds the rest from it)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        """Start the servers, give the primaries the slots, join them, pair the replicas; wait for ``ok``."""
        for attempt in range(3):
            try:
                self._launch()
                break
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
        self._form()

    def _launch(self) -> None:
        ports = _free_ports(2 * self._count)
        self.nodes = []
        for index in range(self._count):
            node = ClusterNode(ports[2 * index], ports[2 * index + 1], self.root / f"node-{index}")
            node.dir.mkdir(parents=True, exist_ok=True)
            for stale in ("nodes.conf", "appendonlydir"):
                path = node.dir / stale
                if path.is_file():
                    path.unlink()
            options = {
                "bind": "127.0.0.1",
                "port": node.port,
                "cluster-enabled": "yes",
                "cluster-port": node.bus_port,
                "cluster-config-file": node.dir / "nodes.conf",
                "cluster-node-timeout": NODE_TIMEOUT_MS,
                # A replica takes over however long it was cut off: the tests kill primaries at will.
                "cluster-replica-validity-factor": 0,
                "dir": node.dir,
                "appendonly": "yes",
                "appendfsync": "everysec",
                "save": "",
                "maxmemory-policy": "noeviction",
                "daemonize": "no",
                "logfile": node.dir / "server.log",
                # DEBUG SLEEP holds a replica back: the tests see a durable write wait for it.
                "enable-debug-command": "local",
            }
            node.process = subprocess.Popen(
                [self.binary, *(part for name, value in options.items() for part in (f"--{name}", str(value)))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.nodes.append(node)
        deadline = time.monotonic() + 15
        for node in self.nodes:
            while True:
                if not node.alive:
                    raise RuntimeError(f"valkey-server on port {node.port} exited: see {node.dir / 'server.log'}")
                try:
                    with node.client() as client:
                        client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"valkey-server on port {node.port} did not answer") from None
                    time.sleep(0.02)

    def _form(self) -> None:
        primaries, replicas = self.nodes[:_PRIMARIES], self.nodes[_PRIMARIES:]
        share = _SLOTS // _PRIMARIES
        for index, node in enumerate(primaries):
            first = index * share
            last = _SLOTS - 1 if index == _PRIMARIES - 1 else first + share - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            with node.client() as client:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", seed.port, seed.bus_port)
        self._wait(lambda: all(self._known(node) == len(self.nodes) for node in self.nodes), "the nodes to meet")
        for primary, replica in zip(primaries, replicas, strict=True):
            with primary.client() as client:
                primary_id = client.execute_command("CLUSTER", "MYID").decode()
            with replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", primary_id)
        self._wait(self._healthy, "cluster_state:ok with every replica in sync")

    def _known(self, node: ClusterNode) -> int:
        with node.client() as client:
            lines = client.execute_command("CLUSTER", "NODES").decode().splitlines()
        return sum(1 for line in lines if "handshake" not in line and "noaddr" not in line)

    def _healthy(self) -> bool:
        for node in self.nodes:
            if not node.alive:
                continue
            with node.client() as client:
                if _state(client) != "ok":
                    return False
                replication = client.info("replication")
                if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                    return False
        return True

    def _wait(self, ready: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError):
                if ready():  # type: ignore[operator]
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster did not reach {what} in {timeout:g} s")
            time.sleep(0.05)

    def client(self) -> RedisCluster:
        """A synchronous cluster client (for the tests' own looks at the store)."""
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=5)

    def primary_of(self, key: str) -> ClusterNode:
        """The node that is the primary of ``key``'s slot now."""
        with self.client() as client:
            node = client.get_node_from_key(key)
            return next(n for n in self.nodes if n.port == int(node.port))

    def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        """The live nodes that replicate ``primary`` now."""
        found = []
        for node in self.nodes:
            if node is primary or not node.alive:
                continue
            with node.client() as client:
                replication = client.info("replication")
            if replication.get("role") == "slave" and int(replication.get("master_port", 0)) == primary.port:
                found.append(node)
        return found

    def kill(self, node: ClusterNode) -> None:
        """``kill -9`` one node."""
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait()

    def wait_until_served(self, key: str, timeout: float = 30.0) -> ClusterNode:
        """Wait until a live primary serves ``key``'s slot and the cluster says ``ok``; that primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [node for node in self.nodes if node.alive]
            try:
                with live[0].client() as client:
                    state = _state(client)
                    slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                    for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                        if start <= slot <= end:
                            port = int(primary[1])
                owner = next(node for node in live if node.port == port)
                with owner.client() as client:
                    role = client.info("replication").get("role")
                if state == "ok" and role == "master":
                    return owner
            except (redis.RedisError, StopIteration):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no primary took over the slot of {key} in {timeout:g} s")

    def flushall(self) -> None:
        """Empty every primary (their replicas follow)."""
        for node in self.nodes:
            if not node.alive:
                continue
            with node.client() as client:
                if client.info("replication").get("role") == "master":
                    client.flushall()

    def stop(self) -> None:
        """Stop every server that still runs."""
        for node in self.nodes:
            if node.alive and node.process is not None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()


def _state(client: redis.Redis) -> str:
    """``cluster_state`` from ``CLUSTER INFO``: ``ok`` or ``fail``."""
    for line in client.execute_command("CLUSTER", "INFO").decode().splitlines():
        name, _, value = line.partition(":")
        if name == "cluster_state":
            return value.strip()
    return ""


def flush_everything(url: str) -> None:
    """Empty the store at ``url``: one server's, or every primary of a cluster."""
    with redis.Redis.from_url(url) as client:
        clustered = bool(client.info("cluster").get("cluster_enabled"))
        if not clustered:
            client.flushall()
            return
    with RedisCluster.from_url(url) as cluster:
        cluster.flushall(target_nodes=RedisCluster.PRIMARIES)


def every_key(url: str) -> list[str]:
    """Every key in the store at ``url`` (on a cluster, every primary's)."""
    with redis.Redis.from_url(url) as client:
        clustered = bool(client.info("cluster").get("cluster_enabled"))
        if not clustered:
            return [key.decode() for key in client.scan_iter(count=1000)]
    with RedisCluster.from_url(url) as cluster:
        return [key.decode() for key in cluster.scan_iter(count=1000)]


def sync_client(url: str) -> redis.Redis | RedisCluster:
    """A synchronous client of the store at ``url`` for a test's own looks: one server's, or a cluster's."""
    with redis.Redis.from_url(url) as client:
        if not client.info("cluster").get("cluster_enabled"):
            return redis.Redis.from_url(url)
    return RedisCluster.from_url(url)
