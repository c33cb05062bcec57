"""Test support for the MISP integration: real server processes and MISP-shaped payloads.

* :func:`start_quaid` runs ``python -m engine serve`` (waitress, embedded Redis) on a free
  loopback port; :func:`start_misp_modules` runs the real ``misp-modules`` server of
  ``.venv-misp`` (installed by ``scripts/install-misp-modules.sh``) with our custom root.
* :func:`malware_sample_zip` builds a malware-sample the way MISP stores it: a zip with the
  sample named by its MD5 and ``<md5>.filename.txt``, both encrypted with the traditional
  PKWARE cipher (ZipCrypto, APPNOTE.TXT section 6.1) under the password ``infected`` — the
  cipher PyMISP and misp-modules decrypt with Python's :mod:`zipfile`.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
MISP_VENV = ROOT / ".venv-misp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, log: Path, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {seconds} s: {log.read_text()[-2000:]}")


def start_quaid(home: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """A real ``quaid serve`` process; returns it and its base URL."""
    port = free_port()
    log = home / "quaid.log"
    home.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, "QUAID_HOME": str(home), **(env or {})}
    environ.pop("QUAID_REDIS_URL", None)
    command = [sys.executable, "-m", "engine", "serve", "--port", str(port), "--workers", "0"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(url + "/status", process, log)
    return process, url


def start_misp_modules(tmp: Path) -> tuple[subprocess.Popen, str]:
    """The real misp-modules server with ``misp_modules/`` as custom root."""
    binary = MISP_VENV / "bin" / "misp-modules"
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: run scripts/install-misp-modules.sh")
    port = free_port()
    log = tmp / "misp-modules.log"
    command = [str(binary), "-l", "127.0.0.1", "-p", str(port), "-c", str(ROOT / "misp_modules")]
    process = subprocess.Popen(command, cwd=tmp, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(url + "/healthcheck", process, log)
    return process, url


def stop(process: subprocess.Popen, quaid_home: Path | None = None) -> None:
    """Stop a server process; for ``quaid serve`` also its embedded Redis (which a stopped
    service currently leaves running while the index mirror's connection is open)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if quaid_home is not None:
        from engine.store import EmbeddedRedis

        EmbeddedRedis(quaid_home / "redis").stop()


# -- MISP's malware-sample zip (ZipCrypto) ----------------------------------------------------


def malware_sample_zip(sample: bytes, filename: str, password: bytes = b"infected") -> bytes:
    md5 = hashlib.md5(sample).hexdigest()  # noqa: S324 - MISP names the sample by its MD5
    return _zipcrypto_archive([(md5, sample), (f"{md5}.filename.txt", filename.encode())], password)


def _zipcrypto_archive(members: list[tuple[str, bytes]], password: bytes) -> bytes:
    """A zip of stored (uncompressed) members, each encrypted with ZipCrypto."""
    body, central = b"", b""
    for name, data in members:
        crc = zlib.crc32(data)
        encrypted = _zipcrypto(os.urandom(11) + bytes([crc >> 24]) + data, password)
        fields = struct.pack("<HHHHHIIIHH", 20, 0x1, 0, 0, 0, crc, len(encrypted), len(data), len(name), 0)
        central += (
            b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHII", 0, 0, 0, 0, len(body))
        )
        central += name.encode()
        body += b"PK\x03\x04" + fields + name.encode() + encrypted
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0
    )
    return body + central + end


def _zipcrypto(plain: bytes, password: bytes) -> bytes:
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = _crc_byte(keys[0], byte)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = _crc_byte(keys[2], keys[1] >> 24)

    for byte in password:
        update(byte)
    out = bytearray()
    for byte in plain:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    return bytes(out)


def _crc_byte(crc: int, byte: int) -> int:
    return zlib.crc32(bytes([byte]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
