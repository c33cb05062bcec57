"""Reading and checking request inputs: uploaded files, tags, metadata, numbers.

Why a module of its own: every endpoint that takes a picture must refuse the
same things the same way (400 for a missing part or bad JSON, 413 above
``Settings.max_upload_bytes``, 415 for a body that is not multipart), and names
and metadata are only ever data — never used as file paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app, request
from werkzeug.datastructures import FileStorage

from engine.errors import BadInput, PictureTooLarge, QuaidError
from engine.validation import MAX_NAME_LENGTH as MAX_NAME_LENGTH  # re-exported: the API's rules are
from engine.validation import check_metadata as check_metadata  # engine.validation's, shared by every
from engine.validation import check_tags, clean_text, parse_metadata  # interface (CLI, MISP, AIL)

MAX_TOP = 1000


class UnsupportedMediaType(QuaidError):
    """The request body is not the multipart form the endpoint takes."""

    http_status = 415


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its bytes and the client's file name (data only, never a path)."""

    data: bytes
    filename: str


def require_multipart() -> None:
    """415 unless the request is ``multipart/form-data`` (checked before the body is parsed)."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            f"expected multipart/form-data with a 'file' part, got {request.mimetype or 'no body'}"
        )


def read_upload(storage: FileStorage | None, field_name: str = "file") -> Upload:
    """The bytes of one file part, refused above the configured upload limit."""
    if storage is None:
        raise BadInput(f"missing multipart part '{field_name}'")
    limit: int = current_app.config["QUAID_MAX_UPLOAD_BYTES"]
    data = storage.stream.read(limit + 1)
    if len(data) > limit:
        raise PictureTooLarge(f"file larger than the upload limit of {limit} bytes")
    return Upload(data, clean_text(storage.filename or "", MAX_NAME_LENGTH, "file name"))


def single_file() -> Upload:
    """The ``file`` part of a multipart request."""
    require_multipart()
    return read_upload(request.files.get("file"))


def all_files() -> list[Upload]:
    """Every ``file`` (or ``files``) part of a multipart request, in order; at least one."""
    require_multipart()
    parts = request.files.getlist("file") + request.files.getlist("files")
    if not parts:
        raise BadInput("missing multipart part 'file' (repeat it for several files)")
    return [read_upload(p) for p in parts]


def tags_from(values: list[str]) -> list[str]:
    """Tags from repeated ``tags`` fields (a JSON list is also accepted), de-duplicated, in order."""
    items: list[object] = []
    for value in values:
        items.extend(_json_list(value) if isinstance(value, str) and value.startswith("[") else [value])
    return check_tags(items)


def metadata_from(value: str | None) -> dict | None:
    """The ``metadata`` field: a JSON object of at most 64 KiB, or None when absent."""
    return parse_metadata(value)


def json_object_body() -> dict:
    """The request body as a JSON object (400 for anything else, including absurdly deep JSON)."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        raise BadInput('send a JSON object: {"tags": [...], "metadata": {...}}')
    return body


def int_arg(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer parameter (``top``, ``limit``...)."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"{name} must be an integer, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise BadInput(f"{name} must be between {low} and {high}")
    return number


def bool_arg(value: str | None, name: str) -> bool:
    """A boolean parameter: true/false, 1/0, yes/no; absent means false."""
    if value is None or value == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{name} must be true or false, got {value[:40]!r}")


def picture_id(value: str) -> str:
    """A picture id is a SHA-256 hex digest; refuse anything else early (404 for unknown ones)."""
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise BadInput("picture id must be 64 hex characters (SHA-256 of the bytes)")
    return value.lower()


def _json_list(value: str) -> list:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise BadInput("tags: invalid JSON list") from None
    if not isinstance(parsed, list):
        raise BadInput("tags must be strings or a JSON list of strings")
    return parsed
