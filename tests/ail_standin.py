"""Test helpers for the AIL connector: a real quaid service process and drawn pictures.

The stand-in of AIL itself is :mod:`ail_host`.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
MODULE_FILE = ROOT / "ail_connector" / "ail_module" / "QuaidImages.py"

# --- a real quaid service -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProcess:
    url: str
    process: subprocess.Popen
    log: Path
    home: Path
    redis_pids: list[int | None]

    def stop(self) -> None:
        """Stop the service, then its embedded redis-server, which outlives a terminated serve."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in filter(None, self.redis_pids):
            _terminate(pid)


def _terminate(pid: int, grace: float = 15.0) -> None:
    """SIGTERM (redis saves, then exits), wait for it to be gone, SIGKILL after ``grace`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _redis_pid(sock: Path) -> int | None:
    try:
        return int(redis.Redis(unix_socket_path=str(sock), socket_timeout=5).info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None


def start_service(home: Path, timeout: float = 90.0, env: dict | None = None) -> ServiceProcess:
    """``quaid serve`` on a free loopback port with its own embedded Redis in ``home``.

    Give it a folder of your own (``tempfile.mkdtemp``), not pytest's ``tmp_path``: pytest
    runs of other checkouts prune old base folders, and a redis-server whose folder is gone
    cannot save and refuses to stop. ``env`` adds settings (``QUAID_WRITE_KEYS``, say).
    """
    port = free_port()
    env = {**os.environ, "QUAID_HOME": str(home), **(env or {})}
    env.pop("QUAID_REDIS_URL", None)
    log = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"quaid serve exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/status", timeout=2).status_code == 200:
                pids = [_redis_pid(sock) for sock in home.rglob("*.sock")]
                return ServiceProcess(url, process, log, home, pids)
        except requests.RequestException:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"quaid serve not ready after {timeout}s: {log.read_text()[-2000:]}")


# --- pictures ---------------------------------------------------------------------------------

def page(seed: int, size: tuple[int, int] = (1024, 700)) -> Image.Image:
    """A web-page-like screenshot: header bar, menu, title, text lines and pictures, by seed."""
    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size, tuple(rng.randint(225, 255) for _ in range(3)))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, 70], fill=tuple(rng.randint(0, 160) for _ in range(3)))
    d.text((20, 25), f"Site {seed}", fill="white")
    def colour(low: int = 0, high: int = 255) -> tuple[int, int, int]:
        return tuple(rng.randint(low, high) for _ in range(3))

    for i in range(rng.randint(3, 6)):
        d.rectangle([20 + i * 110, 80, 110 + i * 110, 100], fill=colour(60, 200))
    y = 130
    while y < h - 40:
        if rng.random() < 0.25:
            bw, bh = rng.randint(120, 400), rng.randint(60, 160)
            x = rng.randint(20, w - bw - 20)
            d.rectangle([x, y, x + bw, y + bh], fill=colour())
            d.ellipse([x + 10, y + 10, x + bw // 2, y + bh - 10], fill=colour())
            y += bh + 20
        else:
            d.rectangle([30, y, rng.randint(200, w - 30), y + 8], fill=(70, 70, 70))
            y += 22
    return img


def png(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


def reencoded(img: Image.Image) -> bytes:
    """Same pixels, other bytes (another zlib level): another SHA-256, the same picture."""
    return png(img, compress_level=1)


def gif(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("P").save(buf, "GIF")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
