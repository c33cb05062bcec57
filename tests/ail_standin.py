"""Test helpers for the AIL connector: a real quaid service process, drawn pictures, and a
stand-in for AIL's module API.

The stand-in reproduces, with the same names and signatures, the parts of AIL that
``ail_connector/ail_module/QuaidImages.py`` touches (read from ail-framework's
``bin/modules/abstract_module.py``, ``bin/lib/ail_queues.py``, ``bin/lib/ConfigLoader.py``,
``bin/lib/objects/abstract_object.py``, ``Screenshots.py``, ``Images.py``):

* ``modules.abstract_module.AbstractModule`` — module name = class name, a section of that
  name required in ``modules.cfg``, messages ``<type>:<subtype>:<id>;<message>``,
  ``add_message_to_queue(obj=None, message='', queue=None)`` refusing queues the module
  does not publish to, ``send_back_message_to_queue``, ``compute``/``computeNone`` driven
  by the same loop body as ``AbstractModule.run``;
* ``lib.ConfigLoader.ConfigLoader`` over a ``core.cfg`` text;
* ``lib.objects.Screenshots`` / ``lib.objects.Images`` — objects backed by files in AIL's
  2-character layout, with tags and correlations recorded in :class:`AILWorld`.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from PIL import Image, ImageDraw

from ail_connector.ail_objects import rel_path

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


def start_service(home: Path, timeout: float = 90.0) -> ServiceProcess:
    """``quaid serve`` on a free loopback port with its own embedded Redis in ``home``.

    Give it a folder of your own (``tempfile.mkdtemp``), not pytest's ``tmp_path``: pytest
    runs of other checkouts prune old base folders, and a redis-server whose folder is gone
    cannot save and refuses to stop.
    """
    port = free_port()
    env = {**os.environ, "QUAID_HOME": str(home)}
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


# --- AIL stand-in -----------------------------------------------------------------------------

MODULES_CFG = """
[Global]
subscribe = SaveObj
publish = Item,Image,Images,Indexers,Titles,Trackers

[CodeReader]
subscribe = Images
publish = Item,Tags

[QuaidImages]
subscribe = Images
publish = Tags

[Tags]
subscribe = Tags
publish = Tag_feed
"""


@dataclass
class AILWorld:
    """What the stand-in AIL holds and records: files, tags, correlations, queues."""

    home: Path
    core_cfg: str
    tags: dict[str, set[str]] = field(default_factory=dict)
    correlations: set[tuple[str, str]] = field(default_factory=set)
    queues: dict[str, list[str]] = field(default_factory=dict)  # module name -> "gid;message" lines
    sent_back: list[str] = field(default_factory=list)

    @property
    def screenshot_dir(self) -> Path:
        return self.home / "CRAWLED_SCREENSHOT" / "screenshot"

    @property
    def image_dir(self) -> Path:
        return self.home / "IMAGES"

    def add_screenshot(self, data: bytes, tags: tuple[str, ...] = ()) -> str:
        """As ``Screenshots.create_screenshot``: file named by the SHA-256 of the bytes."""
        obj_id = sha(data)
        path = self.screenshot_dir / rel_path(obj_id, "screenshot")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.tags.setdefault(f"screenshot::{obj_id}", set()).update(tags)
        return obj_id

    def add_image(self, data: bytes, tags: tuple[str, ...] = ()) -> str:
        """As ``Images.create``: no extension."""
        obj_id = sha(data)
        path = self.image_dir / rel_path(obj_id, "image")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.tags.setdefault(f"image::{obj_id}", set()).update(tags)
        return obj_id

    def push(self, module: str, global_id: str, message: str = "") -> None:
        self.queues.setdefault(module, []).append(f"{global_id};{message}")

    def run_tags_module(self) -> list[str]:
        """AIL's ``Tags`` module: each ``gid;tag`` line on its queue becomes ``obj.add_tag(tag)``."""
        lines, self.queues["Tags"] = self.queues.get("Tags", []), []
        for line in lines:
            gid, tag = line.split(";", 1)
            self.tags.setdefault(gid, set()).add(tag)
        return lines

    def correlated(self, gid1: str, gid2: str) -> bool:
        return (gid1, gid2) in self.correlations and (gid2, gid1) in self.correlations


def install_ail_standin(world: AILWorld) -> None:
    """Put the stand-in ``modules.*`` and ``lib.*`` modules into ``sys.modules``."""
    os.environ["AIL_BIN"] = str(world.home / "bin")
    os.environ["AIL_HOME"] = str(world.home)
    mods = {name: types.ModuleType(name) for name in
            ("modules", "modules.abstract_module", "lib", "lib.ConfigLoader", "lib.objects",
             "lib.objects.Screenshots", "lib.objects.Images", "lib.objects.ail_objects")}
    _build_objects(world, mods)
    _build_config(world, mods)
    _build_abstract_module(world, mods)
    mods["modules"].abstract_module = mods["modules.abstract_module"]
    mods["lib"].ConfigLoader = mods["lib.ConfigLoader"]
    mods["lib"].objects = mods["lib.objects"]
    for name in ("Screenshots", "Images", "ail_objects"):
        setattr(mods["lib.objects"], name, mods[f"lib.objects.{name}"])
    sys.modules.update(mods)


def remove_ail_standin() -> None:
    for name in list(sys.modules):
        if name in ("modules", "lib", "QuaidImages") or name.startswith(("modules.", "lib.")):
            del sys.modules[name]


def _build_objects(world: AILWorld, mods: dict) -> None:
    class AbstractObject:
        def __init__(self, obj_type, id, subtype=None):
            self.id, self.type, self.subtype = id, obj_type, subtype

        def get_id(self):
            return self.id

        def get_type(self):
            return self.type

        def get_subtype(self, r_str=False):
            if not self.subtype and r_str:
                return ""
            return self.subtype

        def get_global_id(self):
            return f"{self.get_type()}:{self.get_subtype(r_str=True)}:{self.get_id()}"

        def get_tags(self, r_list=False):
            tags = set(world.tags.get(self.get_global_id(), set()))
            return list(tags) if r_list else tags

        def add_tag(self, tag):
            world.tags.setdefault(self.get_global_id(), set()).add(tag)

        def is_tags_safe(self, tags=None):
            from ail_connector.ail_objects import is_tags_safe

            if not tags:
                tags = self.get_tags()
            return is_tags_safe(tags)

        def add_correlation(self, type2, subtype2, id2):
            # correlations_engine.add_obj_correlation: both directions
            other = f"{type2}:{subtype2 or ''}:{id2}"
            world.correlations.add((self.get_global_id(), other))
            world.correlations.add((other, self.get_global_id()))

        def exists(self):
            return os.path.isfile(self.get_filepath())

    class Screenshot(AbstractObject):
        def __init__(self, screenshot_id):
            super().__init__("screenshot", screenshot_id)

        def get_filepath(self):
            return str(world.screenshot_dir / rel_path(self.id, "screenshot"))

        def get_file_content(self):
            with open(self.get_filepath(), "rb") as f:
                return io.BytesIO(f.read())

    class ImageObj(AbstractObject):
        def __init__(self, image_id):
            super().__init__("image", image_id)

        def get_filepath(self):
            return str(world.image_dir / rel_path(self.id, "image"))

        def get_content(self, r_type="str"):
            if r_type == "str":
                return None
            with open(self.get_filepath(), "rb") as f:
                data = f.read()
            return data if r_type == "bytes" else io.BytesIO(data)

    def get_obj_from_global_id(global_id):
        obj_type, subtype, obj_id = global_id.split(":", 2)
        return {"screenshot": Screenshot, "image": ImageObj}[obj_type](obj_id)

    mods["lib.objects.Screenshots"].Screenshot = Screenshot
    mods["lib.objects.Screenshots"].get_screenshot_dir = lambda: str(world.screenshot_dir)
    mods["lib.objects.Images"].Image = ImageObj
    mods["lib.objects.ail_objects"].get_obj_from_global_id = get_obj_from_global_id


def _build_config(world: AILWorld, mods: dict) -> None:
    class ConfigLoader:
        def __init__(self, config_file=None):
            self.cfg = configparser.ConfigParser()
            self.cfg.read_string(MODULES_CFG if config_file == "modules.cfg" else world.core_cfg)

        def get_config_sections(self):
            return self.cfg.sections()

        def get_config_str(self, section, key_name):
            return self.cfg.get(section, key_name)

        def has_option(self, section, key_name):
            return self.cfg.has_option(section, key_name)

        def has_section(self, section):
            return self.cfg.has_section(section)

        def get_all_keys_values_from_section(self, section):
            if section in self.cfg:
                return [(k, self.cfg.get(section, k)) for k in self.cfg[section]]
            return []

    mods["lib.ConfigLoader"].ConfigLoader = ConfigLoader


def _build_abstract_module(world: AILWorld, mods: dict) -> None:
    ConfigLoader = mods["lib.ConfigLoader"].ConfigLoader
    get_obj_from_global_id = mods["lib.objects.ail_objects"].get_obj_from_global_id

    class ModuleQueueError(Exception):
        pass

    class AbstractModule:
        def __init__(self, module_name=None, queue=True):
            import logging

            self.logger = logging.getLogger(self.__class__.__name__)
            self.module_name = module_name or self.__class__.__name__
            cfg = ConfigLoader(config_file="modules.cfg")
            if not cfg.has_section(self.module_name):
                raise ModuleQueueError(f"No Section defined for this module: {self.module_name}")
            publish = cfg.get_config_str(self.module_name, "publish") if cfg.has_option(
                self.module_name, "publish") else ""
            self.publishes = {q for q in publish.split(",") if q}
            self.subscribers = {q: {m for m in cfg.get_config_sections() if cfg.has_option(m, "subscribe")
                                    and cfg.get_config_str(m, "subscribe") == q} for q in self.publishes}
            self.obj = None
            self.sha256_mess = None
            self.proceed = True
            self.pending_seconds = 10

        def get_obj(self):
            return self.obj

        def get_message(self):
            # AILQueue.get_message: lpop, split on the first ';'
            lines = world.queues.get(self.module_name) or []
            if not lines:
                self.obj = None
                return None
            line = lines.pop(0)
            gid, mess = line.split(";", 1)
            self.sha256_mess = hashlib.sha256(line.encode()).hexdigest()
            self.obj = get_obj_from_global_id(gid) if gid else None
            return mess

        def add_message_to_queue(self, obj=None, message="", queue=None):
            gid = obj.get_global_id() if obj else self.obj.get_global_id() if self.obj else "::"
            if queue not in self.publishes:
                raise ModuleQueueError(f"send_message: Unknown queue_name {queue}")
            for module in self.subscribers[queue]:
                world.queues.setdefault(module, []).append(f"{gid};{message}")

        def send_back_message_to_queue(self, message=""):
            line = f"{self.obj.get_global_id()};{message}"
            world.sent_back.append(line)
            world.queues.setdefault(self.module_name, []).append(line)
            self.obj = None
            self.sha256_mess = None

        def run_rounds(self, rounds: int) -> None:
            """``AbstractModule.run``'s loop body, ``rounds`` times, without the sleeps."""
            for _ in range(rounds):
                if not self.can_process_next_message():
                    continue
                message = self.get_message()
                if message is not None or self.obj:
                    self.compute(message)
                    self.obj = None
                else:
                    self.computeNone()

        def can_process_next_message(self):
            return True

        def compute(self, message):
            raise NotImplementedError

        def computeNone(self):
            pass

    mods["modules.abstract_module"].AbstractModule = AbstractModule


@contextmanager
def ail_with_module(home: Path, core_cfg: str) -> Iterator[AILWorld]:
    """A stand-in AIL at ``home`` with quaid's AIL module loaded from its file, as AIL loads it.

    Yields the world with ``module_class`` set; restores sys.modules, sys.path and the
    AIL_* environment afterwards.
    """
    world = AILWorld(home, core_cfg=core_cfg)
    install_ail_standin(world)
    try:
        spec = importlib.util.spec_from_file_location("QuaidImages", MODULE_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        world.module_class = module.QuaidImages
        yield world
    finally:
        remove_ail_standin()
        sys.path[:] = [p for p in sys.path if p != os.environ.get("AIL_BIN")]
        for name in ("AIL_BIN", "AIL_HOME"):
            os.environ.pop(name, None)
