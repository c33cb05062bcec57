"""A stand-in for the parts of AIL that the QuaidImages module touches, with AIL's rules.

Every rule below was read from ail-project/ail-framework at commit 93006daa92f2 (v7.0-25,
2026-07-15), file named at each rule; the taxonomy data comes from MISP/misp-taxonomies at
36162561 (the commit that AIL commit pins as ``files/misp-taxonomies``), through the extract
``ail_connector/taxonomies.json``. Same module names and signatures as AIL, so the module
file is loaded unchanged:

* ``lib.ConfigLoader.ConfigLoader`` — a plain ``configparser.ConfigParser`` over
  ``$AIL_HOME/configs/core.cfg`` or ``configs/<file>`` (``bin/lib/ConfigLoader.py``): inline
  comments stay in values, ``%`` interpolates;
* ``modules.abstract_module.AbstractModule`` — ``run``'s loop as AIL has it
  (``bin/modules/abstract_module.py``): ``compute`` is guarded (an exception is logged and the
  message ended, :class:`ModuleQueueError` re-raised), ``computeNone`` is not (an exception
  ends the module); with ``queue=False`` there is no queue and no ``obj`` attribute;
* the module's queue (``bin/lib/ail_queues.py``, ``AILQueue``): a ``modules.cfg`` section is
  required, ``publish`` is split on ``,``, a message is ``<global id>;<message>`` split on the
  first ``;``, sending to a queue the module does not publish to raises;
* ``lib.Tag`` (``bin/lib/Tag.py``): taxonomy namespaces and machinetags, ``create_custom_tag``
  (refuses taxonomy and galaxy namespaces), ``add_obj_tags`` (the analyst's path: only
  enabled taxonomy tags), ``confirm_tag`` (rewrites ``infoleak:automatic-detection`` only);
* ``lib.correlations_engine`` (``bin/lib/correlations_engine.py``): ``add_obj_correlation``
  stores any pair both ways, but AIL shows only the types listed for an object type in
  ``CORRELATION_TYPES_BY_OBJ`` (:meth:`AILWorld.shown_correlations`);
* ``lib.objects.Screenshots`` / ``Images`` — files in AIL's 2-character layout; tags and
  correlations live in Kvrocks, so they fail while :attr:`AILWorld.kvrocks_down` is set.
"""

from __future__ import annotations

import configparser
import importlib.util
import io
import json
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from ail_host_module import ModuleDied, ModuleQueueError, build_abstract_module  # noqa: F401 (re-exported)

from ail_connector.ail_objects import is_tags_safe, rel_path

ROOT = Path(__file__).resolve().parents[1]
MODULE_FILE = ROOT / "ail_connector" / "ail_module" / "QuaidImages.py"
TAXONOMIES = json.loads((ROOT / "ail_connector" / "taxonomies.json").read_text())

# configs/modules.cfg at 93006daa: the sections the module's queues meet (others left out).
MODULES_CFG = """
[Global]
subscribe = SaveObj
publish = Item,Image,Images,Indexers,Titles,Trackers

[CodeReader]
subscribe = Images
publish = Item,Tags

[Tags]
subscribe = Tags
publish = Tag_feed

[MISP_Thehive_Auto_Push]
subscribe = Tag_feed
"""
QUAID_MODULES_SECTION = "\n[QuaidImages]\nsubscribe = Images\npublish = Tags\n"

# correlations_engine.CORRELATION_TYPES_BY_OBJ at 93006daa, for the two picture types and the
# types that list them: what AIL shows next to a screenshot or an image.
SHOWN_CORRELATIONS = {
    "screenshot": {"barcode", "domain", "item", "qrcode"},
    "image": {"barcode", "chat", "chat-subchannel", "chat-thread", "message", "ocr", "post", "qrcode",
              "user-account"},
    "domain": {"screenshot"}, "item": {"screenshot"}, "qrcode": {"image", "screenshot"},
    "barcode": {"image", "screenshot"}, "message": {"image"}, "chat": {"image"},
}
# ail_connector/ail_module/correlations-screenshot-image.patch, when an operator applies it
PATCHED_CORRELATIONS = {"screenshot": {"image", "screenshot"}, "image": {"image", "screenshot"}}

@dataclass
class AILWorld:
    """What the stand-in AIL holds and records: files, tags, correlations, queues."""

    home: Path
    tags: dict[str, set[str]] = field(default_factory=dict)
    correlations: set[tuple[str, str]] = field(default_factory=set)
    queues: dict[str, list[str]] = field(default_factory=dict)  # module name -> "gid;message" lines
    sent_back: list[str] = field(default_factory=list)
    custom_tags: set[str] = field(default_factory=set)  # Tag.create_custom_tag
    enabled_taxonomy_tags: set[str] = field(default_factory=set)  # enabled by the admin in AIL's UI
    errors: list[str] = field(default_factory=list)  # what AbstractModule.run's guard logged
    correlation_types: dict[str, set[str]] = field(default_factory=lambda: {
        k: set(v) for k, v in SHOWN_CORRELATIONS.items()})
    kvrocks_down: bool = False
    module_class: type | None = None

    def __post_init__(self) -> None:
        (self.home / "configs").mkdir(parents=True, exist_ok=True)
        self.write_config("core.cfg", "")
        self.write_config("modules.cfg", MODULES_CFG)

    # -- configuration files -- #

    def write_config(self, name: str, text: str) -> None:
        (self.home / "configs" / name).write_text(text)

    def subscribe_module(self) -> None:
        """The operator's optional step: a ``[QuaidImages]`` section in configs/modules.cfg."""
        self.write_config("modules.cfg", MODULES_CFG + QUAID_MODULES_SECTION)

    def apply_correlation_patch(self) -> None:
        for obj_type, extra in PATCHED_CORRELATIONS.items():
            self.correlation_types[obj_type] |= extra

    # -- objects -- #

    @property
    def screenshot_dir(self) -> Path:
        return self.home / "CRAWLED_SCREENSHOT" / "screenshot"

    @property
    def image_dir(self) -> Path:
        return self.home / "IMAGES"

    def add_screenshot(self, data: bytes, tags: tuple[str, ...] = ()) -> str:
        """As ``Screenshots.create_screenshot``: file named by the SHA-256 of the bytes, ``.png``."""
        return self._add("screenshot", self.screenshot_dir, data, tags)

    def crawled_on(self, screenshot_id: str, domain: str) -> None:
        """What the crawler records for a screenshot of a page of ``domain`` (Crawler.py:
        ``screenshot.add_correlation('domain', '', self.domain.id)``)."""
        one, other = f"screenshot::{screenshot_id}", f"domain::{domain}"
        self.correlations |= {(one, other), (other, one)}

    def add_image(self, data: bytes, tags: tuple[str, ...] = ()) -> str:
        """As ``Images.create``: no extension."""
        return self._add("image", self.image_dir, data, tags)

    def _add(self, obj_type: str, folder: Path, data: bytes, tags: tuple[str, ...]) -> str:
        import hashlib

        obj_id = hashlib.sha256(data).hexdigest()
        path = folder / rel_path(obj_id, obj_type)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.tags.setdefault(f"{obj_type}::{obj_id}", set()).update(tags)
        return obj_id

    # -- queues -- #

    def push(self, module: str, global_id: str, message: str = "") -> None:
        self.queues.setdefault(module, []).append(f"{global_id};{message}")

    def run_tags_module(self) -> list[str]:
        """AIL's ``Tags`` module (``bin/modules/Tags.py``): ``obj.add_tag(tag)`` for each line."""
        lines, self.queues["Tags"] = self.queues.get("Tags", []), []
        for line in lines:
            gid, tag = line.split(";", 1)
            self.tags.setdefault(gid, set()).add(tag)
            self.push("MISP_Thehive_Auto_Push", gid, tag)
        return lines

    # -- what AIL shows -- #

    def shown_correlations(self, gid: str) -> set[str]:
        """``get_correlations(..., sanityze=True)``: stored correlations of a listed type only."""
        obj_type = gid.split(":", 1)[0]
        allowed = self.correlation_types.get(obj_type, set())
        return {other for one, other in self.correlations if one == gid and other.split(":", 1)[0] in allowed}

    def correlated(self, gid1: str, gid2: str) -> bool:
        """Stored both ways and shown from both objects."""
        return gid2 in self.shown_correlations(gid1) and gid1 in self.shown_correlations(gid2)

    def taxonomy_namespaces(self) -> set[str]:
        return set(TAXONOMIES["namespaces"])

    def taxonomy_tags(self, namespace: str) -> set[str]:
        """Machinetags of a taxonomy; only those in the extract are known here (others: none)."""
        return set(TAXONOMIES["machinetags"].get(namespace, ()))

    def known_tag(self, tag: str) -> bool:
        """A value of a taxonomy AIL ships, or a registered custom tag (``Tag.is_custom_tag``)."""
        namespace = tag.split(":")[0]
        if namespace in self.taxonomy_namespaces():
            return tag in self.taxonomy_tags(namespace)
        return tag in self.custom_tags

    def unknown_tags(self) -> set[str]:
        return {tag for tags in self.tags.values() for tag in tags if not self.known_tag(tag)}

    def check_kvrocks(self) -> None:
        if self.kvrocks_down:
            raise redis.exceptions.ConnectionError("Error 111 connecting to localhost:6383.")


# --- lib.* and modules.* -------------------------------------------------------------------------

def install_ail_standin(world: AILWorld) -> None:
    """Put the stand-in ``modules.*`` and ``lib.*`` modules into ``sys.modules``."""
    os.environ["AIL_BIN"] = str(world.home / "bin")
    os.environ["AIL_HOME"] = str(world.home)
    names = ("modules", "modules.abstract_module", "lib", "lib.ConfigLoader", "lib.Tag", "lib.exceptions",
             "lib.correlations_engine", "lib.objects", "lib.objects.Screenshots", "lib.objects.Images",
             "lib.objects.ail_objects")
    mods = {name: types.ModuleType(name) for name in names}
    mods["lib.exceptions"].ModuleQueueError = ModuleQueueError
    _build_config(world, mods)
    _build_tag(world, mods)
    _build_correlations(world, mods)
    _build_objects(world, mods)
    build_abstract_module(world, mods)
    for name, module in mods.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(mods[parent], child, module)
    sys.modules.update(mods)


def remove_ail_standin() -> None:
    for name in list(sys.modules):
        if name in ("modules", "lib", "QuaidImages") or name.startswith(("modules.", "lib.")):
            del sys.modules[name]


def _build_config(world: AILWorld, mods: dict) -> None:
    config_dir = world.home / "configs"

    class ConfigLoader:
        def __init__(self, config_file=None):
            self.cfg = configparser.ConfigParser()
            self.cfg.read(os.path.join(config_dir, config_file or "core.cfg"))

        def get_config_sections(self):
            return self.cfg.sections()

        def get_config_str(self, section, key_name):
            return self.cfg.get(section, key_name)

        def get_config_int(self, section, key_name):
            return self.cfg.getint(section, key_name)

        def get_config_boolean(self, section, key_name):
            return self.cfg.getboolean(section, key_name)

        def has_option(self, section, key_name):
            return self.cfg.has_option(section, key_name)

        def has_section(self, section):
            return self.cfg.has_section(section)

        def get_all_keys_values_from_section(self, section):
            if section in self.cfg:
                return [(key, self.cfg.get(section, key)) for key in self.cfg[section]]
            return []

    mods["lib.ConfigLoader"].ConfigLoader = ConfigLoader


def _build_tag(world: AILWorld, mods: dict) -> None:
    tag_mod = mods["lib.Tag"]

    def is_taxonomie_tag(tag, namespace=None):
        namespace = namespace or tag.split(":")[0]
        return namespace != "misp-galaxy" and namespace in world.taxonomy_namespaces()

    def create_custom_tag(tag):
        world.check_kvrocks()
        if not is_taxonomie_tag(tag) and not tag.split(":")[0] == "misp-galaxy":
            world.custom_tags.add(tag)

    def add_obj_tags(object_id, object_subtype, object_type, tags=(), galaxy_tags=()):
        for tag in tags:  # the analyst's path: is_taxonomy_tag_enabled(namespace, tag)
            if tag not in world.enabled_taxonomy_tags:
                return {"status": "error", "reason": "Tags or Galaxy not enabled", "value": tag}, 400
            world.tags.setdefault(f"{object_type}:{object_subtype or ''}:{object_id}", set()).add(tag)
        return None

    def confirm_tag(tag, obj):
        if tag.startswith("infoleak:automatic-detection"):
            obj.add_tag(tag.replace("automatic-detection", "analyst-detection", 1))
            return True
        return False

    tag_mod.get_taxonomies = lambda: sorted(world.taxonomy_namespaces())
    tag_mod.get_taxonomy_tags = lambda taxonomy, enabled=False: [
        {"tag": t, "expanded": t} for t in sorted(world.taxonomy_tags(taxonomy))]
    tag_mod.is_taxonomie_tag = is_taxonomie_tag
    tag_mod.create_custom_tag = create_custom_tag
    tag_mod.is_custom_tag = lambda tag: tag in world.custom_tags
    tag_mod.add_obj_tags = add_obj_tags
    tag_mod.confirm_tag = confirm_tag


def _build_correlations(world: AILWorld, mods: dict) -> None:
    engine = mods["lib.correlations_engine"]

    def add_obj_correlation(obj1_type, subtype1, obj1_id, obj2_type, subtype2, obj2_id):
        world.check_kvrocks()
        one, other = f"{obj1_type}:{subtype1 or ''}:{obj1_id}", f"{obj2_type}:{subtype2 or ''}:{obj2_id}"
        world.correlations |= {(one, other), (other, one)}

    engine.get_obj_correl_types = lambda obj_type: sorted(world.correlation_types.get(obj_type, ())) or None
    engine.add_obj_correlation = add_obj_correlation


def _build_objects(world: AILWorld, mods: dict) -> None:
    correlations = mods["lib.correlations_engine"]

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
            world.check_kvrocks()
            tags = set(world.tags.get(self.get_global_id(), set()))
            return list(tags) if r_list else tags

        def add_tag(self, tag):
            world.check_kvrocks()
            world.tags.setdefault(self.get_global_id(), set()).add(tag)

        def is_tags_safe(self, tags=None):
            if not tags:
                tags = self.get_tags()
            return is_tags_safe(tags)

        def get_correlation(self, obj_type):
            """``{obj_type: {"<subtype>:<id>", ...}}`` as correlations_engine.get_correlations answers
            with ``sanityze=False`` (abstract_object.py)."""
            world.check_kvrocks()
            mine = self.get_global_id()
            found = {other.split(":", 1)[1] for one, other in world.correlations
                     if one == mine and other.split(":", 1)[0] == obj_type}
            return {obj_type: found}

        def add_correlation(self, type2, subtype2, id2):
            subtype = self.get_subtype(r_str=True)
            correlations.add_obj_correlation(self.type, subtype, self.id, type2, subtype2, id2)

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
    mods["lib.objects.Images"].get_screenshot_dir = lambda: str(world.image_dir)  # AIL's name, image folder
    mods["lib.objects.ail_objects"].get_obj_from_global_id = get_obj_from_global_id


@contextmanager
def ail_with_module(home: Path, core_cfg: str, subscribed: bool = True) -> Iterator[AILWorld]:
    """A stand-in AIL at ``home`` with quaid's AIL module loaded from its file, as AIL loads it.

    ``core_cfg`` is the text of configs/core.cfg; ``subscribed`` adds the optional
    ``[QuaidImages]`` section to configs/modules.cfg. Yields the world with ``module_class``
    set; restores sys.modules, sys.path and the AIL_* environment afterwards.
    """
    world = AILWorld(home)
    world.write_config("core.cfg", core_cfg)
    if subscribed:
        world.subscribe_module()
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
