"""Open the Redis quaid stores its data in: external (``QUAID_REDIS_URL``) or embedded.

``redis_url`` forms: ``redis://``, ``rediss://``, ``unix://`` (one server: Redis, Valkey,
Kvrocks) and ``redis+cluster://host:port[,host:port...][?wait=N]`` (a Redis Cluster;
see :mod:`engine.store.cluster`). Without a URL,
the embedded server of :mod:`engine.store.embedded` runs in ``<home>/redis``, and ``home``
is made private first (0700, :mod:`engine.store.private`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from engine.config import redact_url
from engine.errors import StoreUnavailable
from engine.store.cluster import SCHEME, UNAVAILABLE, ReplicaWait, open_cluster
from engine.store.embedded import EmbeddedRedis
from engine.store.private import private_dir


@dataclass
class Connection:
    """A client that returns bytes, and the embedded server it came from (None when external)."""

    client: redis.Redis | RedisCluster
    embedded: EmbeddedRedis | None = None
    replica_wait: ReplicaWait | None = None  # ``?wait=N`` on a cluster URL: writes wait for N replicas

    def close(self) -> None:
        self.client.close()  # first: release() counts the clients still connected
        if self.embedded is not None:
            self.embedded.release()

    def revive(self) -> bool:
        """Start the embedded server again if it died under us (crash, OOM kill); False if external.

        :meth:`EmbeddedRedis.acquire` pings the socket first and starts a server only when
        none answers, under the start lock, so calling this while it runs is harmless.
        An external Redis is restarted by its own supervisor; the client reconnects by itself.
        """
        if self.embedded is None:
            return False
        self.embedded.acquire()
        return True


def connect(redis_url: str | None, home: Path) -> Connection:
    """Connect (starting the embedded server when ``redis_url`` is None) and check it answers."""
    if redis_url is None:
        embedded = EmbeddedRedis(private_dir(Path(home).absolute()) / "redis")
        embedded.acquire()
        return Connection(embedded.client(), embedded)
    try:
        wait = None
        if redis_url.startswith(SCHEME):
            client, wait = open_cluster(redis_url)
        else:
            client = redis.Redis.from_url(redis_url)
        client.ping()
    except (*UNAVAILABLE, redis.RedisError, OSError, ValueError) as exc:
        raise StoreUnavailable(f"cannot reach Redis at {_safe(redis_url)}: {exc}") from None
    return Connection(client, replica_wait=wait)


def _safe(url: str) -> str:
    """The URL without a password (it ends up in logs and error messages)."""
    return redact_url(url) or ""
