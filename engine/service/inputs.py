"""Reading and checking request inputs: uploaded files, tags, metadata, numbers.

Why a module of its own: every endpoint that takes a picture must refuse the
same things the same way (400 for a missing part or bad JSON, 413 above
``Settings.max_upload_bytes``, 415 for a body that is not multipart), and names
and metadata are only ever data — never used as file paths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Request, current_app, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from engine.errors import BadInput, NotFound, PictureTooLarge, QuaidError

# The API's rules are engine.validation's, shared by every interface (CLI, MISP, AIL).
from engine.validation import MAX_METADATA_DEPTH, check_tags, clean_text, parse_metadata
from engine.validation import MAX_NAME_LENGTH as MAX_NAME_LENGTH  # re-exported
from engine.validation import check_metadata as check_metadata  # re-exported

MAX_TOP = 1000
FORM_FIELDS = 100  # multipart parts allowed besides the files of a job (name, tags, metadata...)
MAX_CLUSTER_ID = 2**63 - 1  # cluster numbers come from a Redis counter (a signed 64-bit integer)


class UnsupportedMediaType(QuaidError):
    """The request body is not the multipart form the endpoint takes."""

    http_status = 415


class FormTooLarge(QuaidError):
    """The form has too many parts, or a text field too large to hold in memory."""

    http_status = 413


class FormRequest(Request):
    """Flask's request, whose form-limit refusals say which limit was hit.

    Werkzeug answers a form of more than ``MAX_FORM_PARTS`` parts, or with a text field over
    ``MAX_FORM_MEMORY_SIZE`` bytes, with the same bare 413 as a body over the size limit, so
    the client would be told to send less data when it should send fewer fields.
    """

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge:
            length, limit = self.content_length, self.max_content_length
            if length is not None and limit is not None and length > limit:
                raise
            raise FormTooLarge(
                f"form refused: more than {self.max_form_parts} form fields and files (form-field limit), "
                f"or a text field over {self.max_form_memory_size} bytes") from None


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
    parts = request.files.getlist("file")
    if len(parts) > 1:
        raise BadInput(f"one 'file' part expected, got {len(parts)} (send several files as a batch job)")
    return read_upload(parts[0] if parts else None)


def file_parts() -> list[FileStorage]:
    """Every ``file`` (or ``files``) part of a multipart request, in order, unread; at least one.

    Werkzeug keeps each large part in a temporary file: reading them one at a time
    (:func:`read_upload`) keeps one file of a batch in memory, not the whole batch."""
    require_multipart()
    parts = request.files.getlist("file") + request.files.getlist("files")
    if not parts:
        raise BadInput("missing multipart part 'file' (repeat it for several files)")
    return parts


def tags_from(values: list[str]) -> list[str]:
    """Tags from repeated ``tags`` fields (a JSON list is also accepted), de-duplicated, in order."""
    items: list[object] = []
    for value in values:
        items.extend(_json_list(value) if isinstance(value, str) and value.startswith("[") else [value])
    return check_tags(items)


def metadata_from(value: str | None) -> dict | None:
    """The ``metadata`` field: a JSON object of at most 64 KiB, or None when absent."""
    return parse_metadata(value)


def with_brand_fields(metadata: dict | None, form: Mapping[str, str]) -> dict | None:
    """``metadata`` with the ``brand`` and ``domain`` form fields of an upload, when given
    (a brand baseline: :mod:`engine.brands`); checked as metadata."""
    given = {key: form[key] for key in ("brand", "domain") if form.get(key)}
    if not given:
        return metadata
    return check_metadata({**(metadata or {}), **given})


def json_object_body(example: str = '{"tags": [...], "metadata": {...}}') -> dict:
    """The request body as a JSON object (400 for anything else, including absurdly deep JSON)."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        raise BadInput(f"send a JSON object: {example}")
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


def cluster_id(value: str) -> int:
    """A cluster number: 400 when it is not a number, 404 when no counter could have made it."""
    if not (value.isascii() and value.isdigit()):
        raise BadInput(f"cluster ids are numbers, got {value[:40]!r}")
    number = int(value[:40])
    if len(value) > 40 or number > MAX_CLUSTER_ID:
        raise NotFound(f"no cluster {value[:40]}")
    return number


def _json_list(value: str) -> list:
    try:
        parsed = json.loads(value)
    except RecursionError:  # "[[[[..." deeper than the interpreter recurses
        raise BadInput(f"tags nested deeper than {MAX_METADATA_DEPTH} levels") from None
    except ValueError:
        raise BadInput("tags: invalid JSON list") from None
    if not isinstance(parsed, list):
        raise BadInput("tags must be strings or a JSON list of strings")
    return parsed
