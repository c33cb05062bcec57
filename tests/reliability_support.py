"""Helpers of the reliability tests and of ``benchmarks/load_test.py``.

* :func:`distinct_picture` — many small pictures that differ in layout, fast to make;
* :func:`store_snapshot` — every key quaid keeps per picture, to prove nothing changed;
* :func:`stored_state` — whether one picture is fully stored, absent, or half-written;
* :func:`rss_kib` — resident memory of a process (Linux ``/proc``), to show memory stays bounded;
* :func:`stream_request` — a raw HTTP request whose body is streamed from a generator, stopping
  as soon as the server answers (what a hostile or broken client does with a huge upload).
"""

from __future__ import annotations

import io
import random
import select
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import redis
from PIL import Image, ImageDraw

from engine.store import keys

PER_PICTURE = ("picture", "features", "codes", "image")


def distinct_picture(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    """A PNG whose layout (blocks, discs, bars) is drawn at random from ``seed``.

    Small (a few KB) so thousands can be added in minutes, yet different seeds give
    pictures that no algorithm takes for one another: block positions, sizes and colours
    all change, as between two unrelated screenshots.
    """
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(8, 14)):
        x0, y0 = rng.randrange(width - 8), rng.randrange(height - 8)
        x1, y1 = x0 + rng.randrange(8, width // 2), y0 + rng.randrange(8, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.rectangle if rng.random() < 0.6 else draw.ellipse)((x0, y0, x1, y1), fill=colour)
    for row in range(rng.randrange(3, 8)):
        y = 4 + row * rng.randrange(10, 16)
        x = rng.randrange(4, width // 3)
        draw.rectangle((x, y, x + rng.randrange(20, width - x), y + 3), fill=(rng.randrange(60),) * 3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def store_snapshot(client: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    """Every per-picture key (record, features, codes, image) with its full content."""
    snapshot = {}
    for kind in PER_PICTURE:
        for key in client.scan_iter(match=f"{keys.PREFIX}:{kind}:*", count=1000):
            if client.type(key) == b"hash":
                snapshot[key] = client.hgetall(key)
    return snapshot


def stored_state(client: redis.Redis, picture_id: str, keep_image: bool = True) -> str:
    """``"full"`` (record, features, codes and image all there), ``"absent"`` or ``"partial"``."""
    wanted = keys.picture_keys(picture_id)[: 4 if keep_image else 3]
    present = [bool(client.exists(key)) for key in wanted]
    if all(present):
        return "full"
    return "absent" if not any(present) else "partial"


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def stream_request(url: str, head: str, body: Iterable[bytes], give_up_after: int) -> tuple[str, int]:
    """Send ``head`` then the chunks of ``body`` until the server answers, closes, or
    ``give_up_after`` bytes are sent. Returns (the server's answer, body bytes sent).

    Used for uploads far above the limit: a correct server answers 413 (and closes) long
    before the client has sent everything, so the body is never read whole.
    """
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode())
        for chunk in body:
            if select.select([sock], [], [], 0)[0] or sent >= give_up_after:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        return read_http_answer(sock), sent


def read_http_answer(sock: socket.socket) -> str:
    """One raw HTTP answer: headers and, when announced, the whole Content-Length body."""
    data = b""
    try:
        while True:
            ready = select.select([sock], [], [], 10)[0]
            if not ready:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if sep and length and len(rest) >= length[0]:
                break
    except ConnectionResetError:
        pass
    return data.decode("utf-8", "replace")
