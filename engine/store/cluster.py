"""Redis Cluster support: open a cluster from a URL, and the few operations that differ.

Why a cluster: one Redis holds roughly 10 M pictures per 100 GB of RAM (see the
capacity model in the README); past that, Redis Cluster shards the keys over several
masters by hash slot (CRC16 of the key, or of its ``{hash tag}``, modulo 16384). quaid's
keys are designed for it (:mod:`engine.store.keys`): every write that must be atomic
touches one slot, so the same code runs on one Redis and on a cluster. What differs,
and lives here:

* the URL: ``redis+cluster://host:port[,host:port...]`` names one or more *seed* nodes
  (any live one is enough; the client learns the slot map from it);
* memory: ``INFO`` must be asked of every primary and summed;
* SCAN: redis-py's ``RedisCluster.scan_iter`` already runs SCAN on every primary, each
  with its own cursor (its default target for SCAN is all primaries), so
  :meth:`engine.store.records.RecordStore.scan_batches` needs no change;
* errors: during a failover redis-py raises ``ClusterDownError``/``TryAgainError``
  (``ResponseError`` subclasses) or ``SlotNotCoveredError``/``RedisClusterException``
  (not even ``RedisError``); :data:`UNAVAILABLE` lists what the service maps to 503.

What a cluster does not guarantee (Redis Cluster specification, "Write safety"):
replication is asynchronous, so a write a master acknowledged and did not yet send to
its replica is lost when that master dies and the replica is promoted. quaid narrows
the window with ``?wait=N`` on the URL: after each picture write it sends ``WAIT N``
on the same connection and refuses (``StoreUnavailable``, 503) a write that fewer than
N replicas acknowledged, so an *acknowledged* add survives the failover of its master.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError

log = logging.getLogger(__name__)

SCHEME = "redis+cluster://"
WAIT_TIMEOUT_MS = 1000  # default milliseconds a write waits for its replicas (``?wait_timeout=``)
_MOVED_RETRIES = 3  # slot-map refreshes before a write to a moving slot gives up

# What "the store cannot answer right now, retry" looks like on a cluster (and on one server).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ClusterDownError, TryAgainError,
    RedisClusterException,
)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def is_client(client: object) -> bool:
    """True for any Redis client quaid can use (one server or a cluster)."""
    return isinstance(client, redis.Redis | RedisCluster)


def parse_cluster_url(url: str) -> tuple[list[ClusterNode], dict[str, str]]:
    """Seed nodes and options (``wait``, ``password``, ``username``) of a ``redis+cluster://`` URL."""
    if not url.startswith(SCHEME):
        raise ValueError(f"not a Redis Cluster URL: {url!r}")
    rest = url.removeprefix(SCHEME)
    netloc, _, query = rest.partition("?")
    netloc = netloc.rstrip("/")
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    auth, _, hosts = netloc.rpartition("@")
    if auth:
        user, _, password = auth.partition(":")
        options.setdefault("username", user) if user else None
        options.setdefault("password", password)
    nodes = []
    for part in hosts.split(","):
        parsed = urlsplit("//" + part.strip())
        if not parsed.hostname:
            raise ValueError(f"no host in {part!r} of the Redis Cluster URL")
        nodes.append(ClusterNode(parsed.hostname, parsed.port or 6379))
    return nodes, options


def open_cluster(url: str, **kwargs: object) -> tuple[RedisCluster, ReplicaWait | None]:
    """A cluster client (bytes responses) and, with ``?wait=N``, the replica wait its writes use."""
    nodes, options = parse_cluster_url(url)
    wait = int(options.pop("wait", "0"))
    timeout = int(options.pop("wait_timeout", str(WAIT_TIMEOUT_MS)))
    if wait < 0 or timeout < 1:
        raise ValueError("wait must be 0 or more replicas and wait_timeout at least 1 ms")
    allowed = {k: options[k] for k in ("username", "password") if options.get(k)}
    client = RedisCluster(startup_nodes=nodes, **allowed, **kwargs)
    return client, (ReplicaWait(client, wait, timeout) if wait else None)


class ReplicaWait:
    """Run a write on the node that owns its key, then ``WAIT`` for ``replicas`` on the same connection.

    ``WAIT`` counts the replication offset of the *connection* that sent the writes
    (Redis documentation, WAIT), so the write and the WAIT must travel together: on a
    cluster they go as one plain pipeline to the master owning the key's slot (found
    in the client's slot map; a ``MOVED`` answer refreshes the map and retries). When
    fewer replicas than asked acknowledge within the timeout the write *did* happen on
    the master but is not known to survive its failover, so the caller is told the
    store is unavailable (503): the client retries, and adding is idempotent.

    Even with WAIT, Redis Cluster is not strongly consistent (specification: "WAIT ...
    does not make Redis a strongly consistent store"): with more than one replica, a
    failover may still promote a replica that missed the write. With one replica per
    master (the tested layout) the only candidate for promotion is the one that
    acknowledged.
    """

    def __init__(self, client: redis.Redis | RedisCluster, replicas: int,
                 timeout_ms: int = WAIT_TIMEOUT_MS) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    def run(self, key: str, queue: Callable[[redis.client.Pipeline], None]) -> list:
        """Queue commands with ``queue(pipeline)`` (all on ``key``'s slot); their replies, once replicated."""
        for attempt in range(_MOVED_RETRIES + 1):
            pipe = self._node(key).pipeline(transaction=False)
            queue(pipe)
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            try:
                replies = pipe.execute(raise_on_error=True)
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith(("MOVED", "ASK")) or attempt == _MOVED_RETRIES:
                    raise
                self._refresh()
                continue
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self._refresh()  # the master may have failed over: the next write asks the new one
                raise
            acked = int(replies[-1])
            if acked < self.replicas:
                raise ReplicationTimeout(f"{acked} of {self.replicas} replicas acknowledged the write to "
                                         f"{key} within {self.timeout_ms} ms")
            return replies[:-1]
        raise AssertionError("unreachable")

    def _node(self, key: str) -> redis.Redis:
        if not is_cluster(self.client):
            return self.client
        node = self.client.get_node_from_key(key)
        return self.client.get_redis_connection(node)

    def _refresh(self) -> None:
        if is_cluster(self.client):
            try:
                self.client.nodes_manager.initialize()
            except (redis.RedisError, RedisClusterException) as exc:
                log.warning("cannot refresh the cluster's slot map: %s", exc)


class ReplicationTimeout(redis.exceptions.ConnectionError):
    """Fewer replicas than required acknowledged a write in time (served as 503: retry later).

    A ``ConnectionError`` subclass on purpose: every layer already treats those as "the
    store is unavailable, retry", which is what the client must do.
    """


def used_memory(client: redis.Redis | RedisCluster) -> int:
    """Bytes used by the store: ``INFO memory`` of the server, or summed over the cluster's primaries."""
    if is_cluster(client):
        replies = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        per_node = replies.values() if _keyed_by_node(replies) else [replies]
        return sum(int(info.get("used_memory", 0)) for info in per_node)
    return int(client.info("memory").get("used_memory", 0))


def _keyed_by_node(replies: dict) -> bool:
    return bool(replies) and all(isinstance(v, dict) for v in replies.values())
