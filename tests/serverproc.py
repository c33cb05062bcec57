"""A real ``quaid serve`` process on loopback for the service tests (not Flask's test client).

``ServerProcess(home, env)`` runs ``python -m engine serve --port 0`` with
``QUAID_HOME=home`` (so the embedded Redis starts there unless ``QUAID_REDIS_URL``
is given), waits for its "serving on" line, and exposes its URL and log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CLIENT_HEADER = "X-Quaid-Request"  # quaid refuses writes without it (a web page cannot send it)
START_TIMEOUT = 90.0  # seconds; imports (faiss, OpenCV) and the index rebuild take a few on 2 busy cores

# Every QUAID_HOME a test ran quaid in: their embedded Redis servers outlive the quaid
# processes by design (daemons shared between processes), so conftest stops them all
# when the session ends (see stop_embedded_servers).
HOMES: set[Path] = set()


def stop_embedded_servers() -> None:
    """Shut down the embedded Redis of every home the tests used (none is left running)."""
    from engine.store import EmbeddedRedis

    for home in sorted(HOMES):
        EmbeddedRedis(home / "redis").stop()
    HOMES.clear()


class ServerProcess:
    def __init__(self, home: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 workers: int = 1) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        HOMES.add(self.home.absolute())
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
        self.env.update({"QUAID_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}, **(env or {}))
        self.args = ("--workers", str(workers), *args)
        self.log_path = self.home / f"serve-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> ServerProcess:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--port", "0", *self.args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://\S+)", self.log())
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"quaid serve exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"quaid serve did not start within {START_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """As quaid's own clients do, with the header writes need (``engine.service.guard``)."""
        headers = {CLIENT_HEADER: "1", **(kwargs.pop("headers", None) or {})}
        return requests.request(method, self.url + path, timeout=30, headers=headers, **kwargs)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        """kill -9: no clean-up at all, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_quaid(home: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run one ``quaid`` command (``python -m engine``) with ``QUAID_HOME=home``."""
    HOMES.add(Path(home).absolute())
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    full_env.update({"QUAID_HOME": str(home)}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_python_json(script: str, *args: str, drop: Callable[[str], bool] = lambda name: False,
                    env: dict[str, str] | None = None, timeout: float = 300.0) -> object:
    """Run ``script`` in a fresh interpreter (the repository importable; environment variables for
    which ``drop`` is true removed, ``env`` added) and parse the JSON of its last output line.

    For process-wide state a test must see from the start: allocator settings, thread pools.
    """
    full_env = {k: v for k, v in os.environ.items() if not drop(k)}
    full_env.update({"PYTHONPATH": str(ROOT)}, **(env or {}))
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         env=full_env, cwd=ROOT, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
