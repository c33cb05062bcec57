"""Shared fixtures: a real Redis server (quaid's embedded one), an empty database per test, a Quaid.

Fixtures (usable by every test module):

* ``redis_server`` (session): an :class:`engine.store.EmbeddedRedis` started in a temporary
  directory — a real ``redis-server`` on a Unix socket, stopped at the end of the session;
* ``redis``: a client (bytes responses) on that server, the database flushed before and after
  each test;
* ``quaid_settings``: :class:`engine.config.Settings` with ``home`` in the test's tmp dir;
* ``quaid``: a :class:`engine.core.Quaid` on the ``redis`` client with those settings.

Tests marked ``@pytest.mark.cluster`` run twice: on the embedded Redis and on a real
3-master Redis Cluster (``redis_cluster``, session scope, :mod:`tests.cluster_fixture`;
Debian's ``redis-server`` in cluster mode, stopped at the end of the session). Only the
store, index-sync and job tests carry the mark: the whole suite twice would double CI.
"""

from __future__ import annotations

import pytest
import redis as redis_lib

from engine.config import Settings, load_settings
from engine.store import EmbeddedRedis
from tests.cluster_fixture import LocalCluster

BACKENDS = ("embedded", "cluster")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no embedded Redis running behind the service and CLI tests."""
    from serverproc import stop_embedded_servers

    stop_embedded_servers()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: run on the embedded Redis and on a 3-master Redis Cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("cluster"):
        metafunc.parametrize("redis_backend", BACKENDS, indirect=True)


@pytest.fixture
def redis_backend(request: pytest.FixtureRequest) -> str:
    """``embedded`` unless the test is marked ``cluster`` (then both, see pytest_generate_tests)."""
    return getattr(request, "param", "embedded")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=0)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.acquire()
    yield server
    server.stop()


@pytest.fixture
def redis(request: pytest.FixtureRequest, redis_backend: str):
    if redis_backend == "cluster":
        yield from _cluster_client(request.getfixturevalue("redis_cluster"))
        return
    redis_server: EmbeddedRedis = request.getfixturevalue("redis_server")
    client: redis_lib.Redis = redis_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


def _cluster_client(cluster: LocalCluster):
    cluster.flush()
    client = cluster.client()
    yield client
    cluster.flush()
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


@pytest.fixture
def local_store(redis_server, redis, tmp_path, monkeypatch):
    """The store the CLI (``engine.cli.main``) opens in this process: the test server, a fresh home."""
    monkeypatch.setenv("QUAID_REDIS_URL", redis_server.url)
    monkeypatch.setenv("QUAID_HOME", str(tmp_path / "home"))
    return redis


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module of the web UI (tests/browser_support.py); a module may
    define its own, with other flags."""
    from tests.browser_support import launched

    with launched() as instance:
        yield instance
