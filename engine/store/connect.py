"""Open the Redis quaid stores its data in: external (``QUAID_REDIS_URL``) or embedded.

``redis_url`` forms: ``redis://``, ``rediss://``, ``unix://`` (one server: Redis, Valkey,
Kvrocks) and ``redis+cluster://host:port`` (a Redis Cluster, issue 9). Without a URL,
the embedded server of :mod:`engine.store.embedded` runs in ``<home>/redis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from engine.errors import StoreUnavailable
from engine.store.embedded import EmbeddedRedis


@dataclass
class Connection:
    """A client that returns bytes, and the embedded server it came from (None when external)."""

    client: redis.Redis
    embedded: EmbeddedRedis | None = None

    def close(self) -> None:
        self.client.close()  # first: release() counts the clients still connected
        if self.embedded is not None:
            self.embedded.release()


def connect(redis_url: str | None, home: Path) -> Connection:
    """Connect (starting the embedded server when ``redis_url`` is None) and check it answers."""
    if redis_url is None:
        embedded = EmbeddedRedis(Path(home) / "redis")
        embedded.acquire()
        return Connection(embedded.client(), embedded)
    try:
        if redis_url.startswith("redis+cluster://"):
            from redis.cluster import RedisCluster

            client = RedisCluster.from_url("redis://" + redis_url.removeprefix("redis+cluster://"))
        else:
            client = redis.Redis.from_url(redis_url)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise StoreUnavailable(f"cannot reach Redis at {redis_url}: {exc}") from None
    return Connection(client)
