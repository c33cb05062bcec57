"""One set of rules for names, tags and metadata, whatever interface they come through.

Why one module: the HTTP API, the CLI, and the MISP and AIL connectors all store
names, tags and metadata that analysts later read in a terminal, a browser, MISP
or AIL. A limit enforced by one door only is no limit, so each of them calls the
functions below and refuses with the same one-line :class:`engine.errors.BadInput`.

Rules (the constants below are the limits):

* text (names, tags) is a ``str`` of valid Unicode without control characters
  (C0, DEL, C1: an ANSI escape sequence starts with ESC or CSI) and within its length;
* tags are strings (a JSON object or number is a type error, never its Python repr),
  stripped, de-duplicated in order, at most :data:`MAX_TAGS`;
* metadata is a JSON object of finite numbers, at most :data:`MAX_METADATA_DEPTH`
  levels deep and :data:`MAX_METADATA_BYTES` once encoded.

File names from a file system are bytes: :func:`file_name` turns them into the
stored text, with any byte that is not UTF-8 written as ``\\xNN`` (Python's
``backslashreplace``), so a name is kept rather than refused and stays valid text.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from collections.abc import Iterable

from engine.errors import BadInput

MAX_NAME_LENGTH = 1024  # characters
MAX_TAGS = 64  # tags per picture
MAX_TAG_LENGTH = 256  # characters
MAX_METADATA_BYTES = 64 * 1024  # bytes of the metadata object encoded as JSON (UTF-8)
MAX_METADATA_DEPTH = 32  # nesting levels: deeper JSON makes the json module recurse past Python's limit


def clean_text(value: object, limit: int, what: str) -> str:
    """``value`` if it is text quaid can store and show, else :class:`BadInput` naming ``what``."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise BadInput(f"{what} longer than {limit} characters")
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            raise BadInput(f"{what} contains control characters")
        if category == "Cs":
            raise BadInput(f"{what} is not valid Unicode (lone surrogate)")
    return value


def check_name(value: object) -> str:
    """A picture's name (its file name by default)."""
    return clean_text(value, MAX_NAME_LENGTH, "name")


def check_tags(values: Iterable[object]) -> list[str]:
    """Tags stripped, de-duplicated in order; each a string of at most :data:`MAX_TAG_LENGTH`."""
    tags: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise BadInput(f"tags: each must be a string, got {type(value).__name__}")
        tag = clean_text(value.strip(), MAX_TAG_LENGTH, "tag")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise BadInput(f"more than {MAX_TAGS} tags")
    return tags


def parse_metadata(text: str | None) -> dict | None:
    """Metadata given as JSON text (a form field): None when absent, else :func:`check_metadata`."""
    if text is None or text == "":
        return None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
        raise BadInput(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise BadInput(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels") from None
    except ValueError as exc:
        raise BadInput(f"metadata is not valid JSON: {exc.args[0] if exc.args else exc}") from None
    return check_metadata(parsed)


def check_metadata(value: object) -> dict:
    """A JSON object that can be stored and sent back as standard JSON, else :class:`BadInput`.

    Python's json module accepts ``NaN``/``Infinity`` (and ``1e999`` becomes infinity) but
    they are not JSON (RFC 8259 section 6): echoing them back would break MISP, AIL and
    browsers parsing the answer. Depth and size are bounded so a record stays small and
    encoding it never exhausts the interpreter's recursion limit. A ``brand`` or ``domain``
    entry must be one a search can judge (:func:`engine.brands.check_reference_fields`).
    """
    if not isinstance(value, dict):
        raise BadInput("metadata must be a JSON object")
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise BadInput("metadata numbers must be finite (no NaN or Infinity)")
        if isinstance(item, dict | list):
            if depth > MAX_METADATA_DEPTH:
                raise BadInput(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels")
            if isinstance(item, dict) and not all(isinstance(key, str) for key in item):
                raise BadInput("metadata keys must be strings")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif not isinstance(item, str | int | float | bool) and item is not None:
            raise BadInput(f"metadata values must be JSON, got {type(item).__name__}")
    try:
        encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("metadata is not valid Unicode (lone surrogate)") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise BadInput(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    from engine.brands import check_reference_fields  # late: engine.brands reads the store's keys

    check_reference_fields(value)
    return value


def file_name(path: str | os.PathLike) -> str:
    """The stored name of a file-system path: its bytes as UTF-8, any other byte as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters and lone surrogates escaped."""
    return "".join(char if unicodedata.category(char) not in ("Cc", "Cs") else
                   char.encode("unicode_escape", "backslashreplace").decode("ascii") for char in text)
