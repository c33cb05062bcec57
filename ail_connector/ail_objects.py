"""AIL's object conventions that the connector must reproduce exactly (no AIL import needed).

Everything here was read from the AIL framework (github.com/ail-project/ail-framework,
``bin/lib/objects/abstract_object.py``, ``Screenshots.py``, ``Images.py``,
``bin/lib/Tag.py``, ``bin/crawlers/Crawler.py``, ``bin/lib/ail_queues.py``):

* an object's *global id* is ``<type>:<subtype>:<id>`` (subtype empty for screenshots and
  images), and a queue message is ``<global id>;<message>``;
* screenshot and image ids are the SHA-256 of the file bytes; the file lives under the
  screenshot (or image) folder split as ``ab/cd/ef/gh/ij/kl/<remaining 52 hex>``, with a
  ``.png`` suffix for screenshots and none for images;
* the crawler refuses to correlate three placeholder screenshots (blank page, "not found",
  404) — they say nothing about a site, and correlating them would join unrelated sites;
* ``Tag.is_tags_safe`` refuses to spread objects carrying violence, illegal pornography,
  child-exploitation or COPINE-scale tags.

quaid's picture ids are the SHA-256 of the submitted bytes too, so an AIL screenshot id
*is* its quaid id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

SCREENSHOT = "screenshot"
IMAGE = "image"
PICTURE_TYPES = (SCREENSHOT, IMAGE)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Crawler.placeholder_screenshots (bin/crawlers/Crawler.py and bin/lib/crawlers.py). AIL's own set
# literal misses a comma after the first entry, so AIL itself only filters the 404 page; the
# three ids below are the intended list.
PLACEHOLDER_SCREENSHOTS = frozenset({
    "07244254f73e822bd4a95d916d8b27f2246b02c428adc29082d09550c6ed6e1a",  # blank page
    "27e14ace10b0f96acd2bd919aaa98a964597532c35b6409dff6cc8eec8214748",  # "not found"
    "3e66bf4cc250a68c10f8a30643d73e50e68bf1d4a38d4adc5bfc4659ca2974c0",  # 404
})

# Tag.build_unsafe_tags(): three dark-web topics plus every COPINE-scale machinetag
# (the copine-scale taxonomy has predicates level-1 .. level-10 and no values).
UNSAFE_TAGS = frozenset(
    {
        'dark-web:topic="violence"',
        'dark-web:topic="pornography-illicit-or-illegal"',
        'dark-web:topic="pornography-child-exploitation"',
    }
    | {f"copine-scale:level-{level}" for level in range(1, 11)}
)


def is_tags_safe(tags: Iterable[str]) -> bool:
    """AIL's rule: safe when no tag is in :data:`UNSAFE_TAGS` (the AIL module asks AIL itself)."""
    return UNSAFE_TAGS.isdisjoint(tags)


def is_sha256(value: str) -> bool:
    """A lower-case 64-hex-digit id, as AIL screenshot and image ids are."""
    return bool(_SHA256.match(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_gif(data: bytes) -> bool:
    """GIF signature (``GIF87a`` / ``GIF89a``); AIL's image modules skip GIFs (``Image.is_gif``)."""
    return data[:6] in (b"GIF87a", b"GIF89a")


def rel_path(obj_id: str, obj_type: str = SCREENSHOT) -> str:
    """Path of a screenshot or image file relative to its AIL folder (``Screenshot.get_rel_path``)."""
    if not is_sha256(obj_id):
        raise ValueError(f"not an AIL picture id: {obj_id!r}")
    parts = [obj_id[i:i + 2] for i in range(0, 12, 2)] + [obj_id[12:]]
    path = "/".join(parts)
    return f"{path}.png" if obj_type == SCREENSHOT else path


def id_from_rel_path(path: str, obj_type: str = SCREENSHOT) -> str | None:
    """The object id a relative path stands for, or ``None`` if it is not in AIL's layout."""
    parts = path.replace("\\", "/").strip("/").split("/")
    if len(parts) != 7 or any(len(p) != 2 for p in parts[:6]):
        return None
    last = parts[6]
    if obj_type == SCREENSHOT:
        if not last.endswith(".png"):
            return None
        last = last[:-4]
    candidate = "".join(parts[:6]) + last
    return candidate if is_sha256(candidate) else None


@dataclass(frozen=True)
class AILRef:
    """A reference to one AIL object, by type, subtype and id."""

    type: str
    id: str
    subtype: str = ""

    @property
    def global_id(self) -> str:
        return f"{self.type}:{self.subtype}:{self.id}"

    @classmethod
    def parse(cls, global_id: str) -> AILRef:
        """``"screenshot::<sha256>"`` -> AILRef; ids may contain ``:`` (items do)."""
        obj_type, sep, rest = global_id.partition(":")
        subtype, sep2, obj_id = rest.partition(":")
        if not (sep and sep2 and obj_type and obj_id):
            raise ValueError(f"not an AIL global id: {global_id!r}")
        return cls(obj_type, obj_id, subtype)


def queue_message(obj: AILRef, message: str = "") -> str:
    """The line AIL pushes on a module queue (``AILQueue.send_message``)."""
    return f"{obj.global_id};{message}"
