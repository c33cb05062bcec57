"""Shared fixtures: a real Redis server (quaid's embedded one), an empty database per test, a Quaid.

Fixtures (usable by every test module):

* ``redis_server`` (session): an :class:`engine.store.EmbeddedRedis` started in a temporary
  directory — a real ``redis-server`` on a Unix socket, stopped at the end of the session;
* ``redis``: a client (bytes responses) on that server, the database flushed before and after
  each test;
* ``quaid_settings``: :class:`engine.config.Settings` with ``home`` in the test's tmp dir;
* ``quaid``: a :class:`engine.core.Quaid` on the ``redis`` client with those settings.
"""

from __future__ import annotations

import pytest
import redis as redis_lib

from engine.config import Settings, load_settings
from engine.store import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.acquire()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: EmbeddedRedis):
    client: redis_lib.Redis = redis_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def quaid_settings(tmp_path) -> Settings:
    return load_settings(home=tmp_path / "home")


@pytest.fixture
def quaid(redis, quaid_settings):
    from engine.core import Quaid

    instance = Quaid(redis, quaid_settings)
    yield instance
    instance.close()
