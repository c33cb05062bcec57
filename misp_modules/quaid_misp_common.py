"""Shared code of quaid's misp-modules: a thread-safe HTTP client of the quaid service, the
reading of MISP payloads, and the MISP ``image`` objects that carry quaid's answer.

Where to start: :func:`run_module` wraps a module's work so that it never raises;
:class:`ModuleClient` makes the module's quaid calls through ``quaid_client`` (the one client
of quaid's API, :func:`load_client`) under one deadline; :func:`match_object` turns one
quaid match into the MISP object an analyst sees.

Why a plain file next to ``expansion/`` and ``import_mod/``: misp-modules loads a custom
root (``misp-modules -c <root>``) file by file with ``importlib`` (``import_from_path``),
so module files are not in a package and cannot import each other relatively. Each module
loads this file by path once (:func:`load_common` in the module), and this file loads
``quaid_client`` the same way. It imports nothing from ``engine``: misp-modules runs in its
own virtual environment, next to MISP, and only needs ``requests`` and ``pymisp``.

MISP conventions used here:
- misp_standard results (``{"results": {"Attribute": [...], "Object": [...]}}``) built with
  PyMISP, https://misp.github.io/misp-modules/ ("misp_standard" format);
- a malware-sample attribute's data is a zip encrypted with the password ``infected``
  holding the sample (named by its MD5) and ``<md5>.filename.txt``;
- decision tags from existing taxonomies: ``workflow`` and ``misp:automation-level``
  (https://github.com/MISP/misp-taxonomies); a match quaid answers ``phishing-suspected``
  (a brand's baseline, seen on a domain that is not the brand's) also gets
  ``phishing:techniques="fake-website"`` (taxonomy ``phishing``, version 5).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import importlib.util
import io
import json
import logging
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymisp import MISPEvent, MISPObject


def load_client():
    """``quaid_client``, the one client of quaid's API, loaded by path from the repository this
    custom root belongs to (misp-modules' environment has ``requests`` but not quaid), or
    imported when it is installed and this root was copied elsewhere."""
    name = "quaid_client"
    folder = Path(__file__).resolve().parent.parent / name
    if name not in sys.modules and (folder / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return importlib.import_module(name)


client = load_client()

LOGGER = logging.getLogger("quaid-misp")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = (
    8.0  # seconds, the whole answer: MISP waits 10 s (Plugin.Enrichment_timeout, Import_timeout)
)
MAX_TIMEOUT = 9.0  # seconds: a larger setting would outlive MISP's own 10 s wait, so it is capped here
DEFAULT_TOP = 5  # matches shown to the analyst
MAX_TOP = 50
MAX_PICTURE_BYTES = 50 * 1024 * 1024  # refuse larger inputs before sending them anywhere
MAX_ZIP_MEMBERS = 200  # pictures per uploaded zip (import module)
MAX_ZIP_TOTAL_BYTES = 64 * 1024 * 1024  # decompressed bytes of all the members of one zip together
READ_CHUNK = 1024 * 1024  # bytes decompressed at a time, so no member is read past its cap
MALWARE_SAMPLE_PASSWORD = b"infected"
# File signatures of the formats quaid decodes (PNG, JPEG, GIF, BMP, TIFF; WebP checked apart).
PICTURE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
# The quaid metadata naming a picture's place in MISP: one schema for the expansion's
# ``register``, the import and the write-back (which reads it to find matches in MISP).
LOCATION_KEYS = ("misp_event_uuid", "misp_event_id", "misp_attribute_uuid", "misp_object_uuid")

# Decision -> tags from existing MISP taxonomies (workflow, misp).
DECISION_TAGS: dict[str, tuple[str, ...]] = {
    "accepted": ('workflow:state="complete"', 'misp:automation-level="unsupervised"'),
    "to-review": ('workflow:todo="review"',),
}
# A brand's look on someone else's domain (quaid's "phishing-suspected" verdict): taxonomy phishing v5,
# "Adversary controls a fake website to phish for credentials or information."
PHISHING_TAG = 'phishing:techniques="fake-website"'
# Decision -> relationship from MISP's list (misp-objects/relationships).
DECISION_RELATIONSHIP = {"accepted": "variant-of", "to-review": "similar"}


class ModuleError(Exception):
    """A failure reported to MISP as ``{"error": message}``."""


@dataclass(frozen=True)
class Config:
    """The module configuration as MISP sends it (every value a string, possibly empty)."""

    url: str
    api_key: str
    timeout: float
    top: int
    register: bool
    public_url: str  # where analysts reach quaid's web UI (the links in MISP); default: url

    @classmethod
    def from_request(cls, request: dict) -> Config:
        raw = request.get("config") or {}
        if not isinstance(raw, dict):
            raise ModuleError("config must be an object")
        url = _http_url(raw.get("url") or DEFAULT_URL, "url")
        return cls(
            url=url,
            api_key=str(raw.get("api_key") or "").strip(),
            timeout=_number(raw.get("timeout"), DEFAULT_TIMEOUT, float, 0.5, MAX_TIMEOUT, "timeout"),
            top=_number(raw.get("top"), DEFAULT_TOP, int, 1, MAX_TOP, "top"),
            register=_boolean(raw.get("register")),
            public_url=_http_url(raw.get("public_url") or url, "public_url"),
        )


def _http_url(value: Any, name: str) -> str:
    url = str(value).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ModuleError(f"config {name} must start with http:// or https://, got {url!r}")
    return url


def _number(value: Any, default: Any, kind: type, low: float, high: float, name: str) -> Any:
    if value is None or str(value).strip() == "":
        return default
    try:
        number = kind(str(value).strip())
    except ValueError:
        raise ModuleError(f"config {name} must be a number, got {value!r}") from None
    return min(max(number, kind(low)), kind(high))


def _boolean(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


class ModuleClient:
    """The quaid calls of one module request, all under one deadline (``config.timeout`` seconds
    from now, below MISP's 10 s), through :class:`quaid_client.QuaidClient`; a failure becomes a
    :class:`ModuleError` worded for the analyst.

    Thread-safe: one instance per request (misp-modules runs handlers on a thread pool).
    """

    def __init__(self, config: Config):
        self.config = config
        self.http = client.QuaidClient(config.url, config.api_key or None, timeout=config.timeout,
                                       retries=0, budget=config.timeout)

    @property
    def deadline(self) -> float:
        """The ``time.monotonic()`` instant after which no call starts."""
        return self.http.deadline

    @deadline.setter
    def deadline(self, instant: float) -> None:
        self.http.deadline = instant

    def search(self, data: bytes, filename: str, top: int, domains: list[str] | None = None) -> dict:
        """``POST /api/v1/search``: the decision and the matches, best first; with the ``domains``
        the picture was seen on, matches against brand baselines carry a verdict."""
        return self._searched(self.http.search, data, domains, top=top, name=filename)

    def search_hashes(self, hashes: dict[str, str], top: int, domains: list[str] | None = None) -> dict:
        """``POST /api/v1/search/hashes``: stored pictures near a partner's hashes (at best to-review)."""
        return self._searched(self.http.search_hashes, hashes, domains, top=top)

    def _searched(self, method: Callable, query: Any, domains: list[str] | None, **kwargs: Any) -> dict:
        """A search with the ``domains`` it names; domains quaid cannot read (a defanged
        ``hxxp://evil[.]test``) leave the search without them."""
        if domains:
            try:
                return checked_search_answer(method(query, domain=domains, **kwargs))
            except client.ServiceError as exc:
                if exc.status != 400:
                    raise ModuleError(_analyst_message(exc)) from None
                LOGGER.info("quaid refused the domains %s (%s): searching without them", domains, exc)
        return checked_search_answer(self._call(method, query, **kwargs))

    def add(self, data: bytes, filename: str, tags: tuple = (), metadata: dict | None = None) -> dict:
        """``POST /api/v1/pictures``: register a picture (idempotent: same bytes, same id)."""
        return self._call(self.http.add, data, name=filename, tags=tags, metadata=metadata)

    def image(self, picture_id: str) -> tuple[bytes, str] | None:
        """The stored picture or its thumbnail, with its content type; None when unavailable."""
        try:
            data, content_type = self.http.image(picture_id)
        except client.ServiceError:
            return None
        return (data, content_type) if data else None

    def submit_job(self, pictures: list[tuple[str, bytes]], tags: tuple, metadata: dict | None) -> str:
        """``POST /api/v1/jobs`` (action ``add``): quaid registers ``pictures`` in the background;
        returns the job id (``GET /api/v1/jobs/<id>`` tells its progress)."""
        return self._call(self.http.submit, pictures, action="add", tags=tags, metadata=metadata)

    def left(self) -> float:
        """Seconds left before the deadline (negative once past it)."""
        return self.http.left()

    def ui_link(self, picture_id: str) -> str:
        """The picture's page in quaid's web UI, at the address analysts reach (``public_url``)."""
        return f"{self.config.public_url}/#/picture/{picture_id}"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ModuleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except client.ServiceError as exc:
            raise ModuleError(_analyst_message(exc)) from None


def _analyst_message(error: Exception) -> str:
    """One line for the analyst from a :class:`quaid_client.ServiceError`."""
    status, reason = getattr(error, "status", None), getattr(error, "reason", "")
    if isinstance(error, client.AuthError):
        return f"quaid refused the API key ({status})"
    if status == 415:
        return f"not a picture: {reason or 'unsupported data'}"
    if status is not None:
        return reason or f"quaid service answered HTTP {status}"
    return str(error)  # nothing answered: unreachable, or no answer in time


def checked_search_answer(answer: dict) -> dict:
    """``answer`` if it has the documented search shape (``matches``: a list of objects with a
    string ``id`` and ``decision`` and a numeric ``distance``), else a one-line ModuleError:
    a proxy or another service answering in quaid's place must not be read as matches."""
    matches = answer.get("matches", [])
    if not isinstance(matches, list):
        raise ModuleError("quaid's search answer is not of the documented shape: 'matches' is not a list")
    for match in matches:
        if not (isinstance(match, dict) and isinstance(match.get("id"), str)
                and isinstance(match.get("decision"), str)
                and isinstance(match.get("distance", 0.0), (int, float))
                and not isinstance(match.get("distance", 0.0), bool)):
            raise ModuleError("quaid's search answer is not of the documented shape: a match without "
                              "a string id and decision and a numeric distance")
    return answer


def noise_of(answer: dict) -> str:
    """Why quaid answers a search as noise (a blank, error, challenge or placeholder page, or
    a copy of a picture in quaid's noise bank), in a few words; ``""`` when it does not.

    A noise answer is never turned into objects, tags or references: such pictures look
    alike whatever site they come from, so a match says nothing about the event.
    """
    noise = answer.get("noise")
    if not isinstance(noise, dict):
        return ""
    picture = noise.get("picture")
    like = f" (like quaid picture {picture})" if isinstance(picture, str) and picture else ""
    return f"{noise.get('reason') or 'noise'}{like}"


# -- reading MISP payloads ------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """One picture taken from a MISP payload, with the MISP entity to reference."""

    data: bytes
    filename: str
    source_uuid: str  # the attribute (or object) the match objects reference
    source: dict  # the input attribute or object
    attribute_uuid: str = ""  # the attachment attribute holding the picture


def decode_base64(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise ModuleError("no picture data: the attribute has no 'data'")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ModuleError("attribute data is not valid base64") from None
    if len(data) > MAX_PICTURE_BYTES:
        raise ModuleError(f"picture larger than {MAX_PICTURE_BYTES // (1024 * 1024)} MiB")
    return data


def is_picture(data: bytes) -> bool:
    """Whether ``data`` starts like a picture format quaid decodes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data.startswith(PICTURE_SIGNATURES)


def read_capped(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    cap: int,
    pwd: bytes | None = None,
    pictures_only: bool = False,
) -> bytes:
    """One member, decompressed chunk by chunk, refused as soon as it passes ``cap`` bytes
    (the size a zip declares is not trusted: a bomb lies about it). With ``pictures_only``,
    a member whose first bytes are not a picture's is refused after its first chunk."""
    chunks, size = [], 0
    with archive.open(info, pwd=pwd) as member:
        while chunk := member.read(READ_CHUNK):
            if pictures_only and not chunks and not is_picture(chunk):
                raise ModuleError(f"{info.filename}: not a picture (PNG, JPEG, GIF, BMP, TIFF or WebP)")
            size += len(chunk)
            if size > cap:
                raise ModuleError(
                    f"{info.filename}: larger than {cap // (1024 * 1024)} MiB once decompressed"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def unzip_malware_sample(data: bytes) -> bytes:
    """The sample inside MISP's malware-sample zip (password ``infected``), at most
    ``MAX_PICTURE_BYTES`` decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.filename.endswith(".filename.txt")]
            if not members:
                raise ModuleError("malware-sample zip holds no sample")
            return read_capped(archive, members[0], MAX_PICTURE_BYTES, MALWARE_SAMPLE_PASSWORD)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error):
        raise ModuleError("malware-sample data is not MISP's zip with password 'infected'") from None


def picture_from_attribute(attribute: dict) -> tuple[bytes, str]:
    """Bytes and file name of an attachment or malware-sample attribute."""
    kind = attribute.get("type")
    data = decode_base64(attribute.get("data"))
    value = str(attribute.get("value") or "")
    if kind == "malware-sample":
        return unzip_malware_sample(data), value.split("|")[0]
    if kind == "attachment":
        return data, value
    raise ModuleError(f"unsupported attribute type {kind!r}: expected attachment or malware-sample")


@dataclass(frozen=True)
class ZipMember:
    """One file of an uploaded zip: its bytes, or why it was not read."""

    name: str
    data: bytes | None
    error: str = ""


def iter_zip_pictures(data: bytes) -> Iterator[ZipMember]:
    """The files of a plain zip (import module), read one at a time, each at most
    ``MAX_PICTURE_BYTES`` and all together at most ``MAX_ZIP_TOTAL_BYTES`` decompressed.
    A member that cannot be read fails alone; past the total budget the rest are not read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ModuleError("not a zip file") from None
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ModuleError(f"zip holds {len(members)} files; at most {MAX_ZIP_MEMBERS}")
        budget = MAX_ZIP_TOTAL_BYTES  # counts every byte decompressed, kept or not
        for info in members:
            name = info.filename.rsplit("/", 1)[-1]
            cap = min(MAX_PICTURE_BYTES, budget)
            if cap <= 0:
                yield ZipMember(
                    name, None, f"not read: the zip passes {MAX_ZIP_TOTAL_BYTES >> 20} MiB decompressed"
                )
                continue
            try:
                member = read_capped(archive, info, cap, pictures_only=True)
            except ModuleError as exc:
                budget -= min(cap, READ_CHUNK) if "not a picture" in str(exc) else cap
                yield ZipMember(name, None, str(exc).split(": ", 1)[-1])
                continue
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError, zlib.error):
                yield ZipMember(name, None, "cannot be read (encrypted or corrupt zip)")
                continue
            budget -= len(member)
            yield ZipMember(name, member)


# -- MISP results ---------------------------------------------------------------------------


def describe(match: dict) -> str:
    """One line for the analyst: decision, merged distance, every algorithm's vote, quaid id."""
    votes = ", ".join(
        f"{name} {vote.get('decision', '?')} {float(vote.get('distance', 0.0)):.3f}"
        for name, vote in sorted((match.get("algorithms") or {}).items())
    )
    line = f"quaid: {match.get('decision', '?')} (distance {float(match.get('distance', 0.0)):.3f})"
    if match.get("reason"):
        line += f", {match['reason']}"
    return f"{line}; votes: {votes or 'none'}; quaid id {match.get('id', '?')}{_brand_note(match)}"


def _brand_note(match: dict) -> str:
    """What the brand verdict says, for the comment: whose site the picture looks like."""
    brand = match.get("brand") if isinstance(match.get("brand"), dict) else None
    if not brand:
        return ""
    name, own = str(brand.get("name", "?")), ", ".join(map(str, brand.get("domains") or ())) or "unknown"
    if match.get("verdict") == "phishing-suspected":
        return f"; phishing suspected: looks like {name}'s site, seen outside its domains ({own})"
    if match.get("verdict") == "legitimate":
        return f"; {name}'s own site ({own})"
    return f"; {name}'s baseline"


def match_object(quaid: ModuleClient, match: dict, source_uuid: str, with_image: bool = True) -> MISPObject:
    """An ``image`` object for one match: filename, UI link, quaid's picture (thumbnail),
    the explanation in the comment, decision tags, and a reference to the queried picture.

    Attachments and filenames are added with ``disable_correlation``: file names such as
    ``screenshot.png`` would otherwise correlate unrelated events; and with ``to_ids`` off,
    as MISP would otherwise take the ``filename`` type's default (on) and export reference
    file names such as ``login.png`` as IDS indicators.
    """
    picture_id = str(match.get("id", ""))
    decision = str(match.get("decision", ""))
    name = str(match.get("name") or picture_id[:16] or "picture")
    tags = [{"name": tag} for tag in DECISION_TAGS.get(decision, ())]
    if match.get("verdict") == "phishing-suspected":
        tags.append({"name": PHISHING_TAG})
    obj = MISPObject("image", standalone=False)
    obj.comment = describe(match)
    obj.add_attribute("filename", value=name, disable_correlation=True, to_ids=False, Tag=tags)
    obj.add_attribute(
        "link", value=quaid.ui_link(picture_id), comment=f"quaid id {picture_id}", to_ids=False, Tag=tags
    )
    image = quaid.image(picture_id) if with_image and picture_id else None
    if image:
        data, content_type = image
        shown = name if _same_kind(name, content_type) else f"{name}.thumbnail.{content_type.split('/')[-1]}"
        obj.add_attribute(
            "attachment", value=shown, data=io.BytesIO(data), disable_correlation=True, to_ids=False
        )
    if source_uuid:  # the legacy payload carries no uuid to reference
        relationship = DECISION_RELATIONSHIP.get(decision, "similar")
        obj.add_reference(source_uuid, relationship, comment=describe(match))
    return obj


def _same_kind(name: str, content_type: str) -> bool:
    """Whether the file name's extension fits the content type (a thumbnail may be JPEG)."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = content_type.split(";")[0].split("/")[-1].lower()
    return not kind or extension == kind or {extension, kind} == {"jpg", "jpeg"}


def results(event: MISPEvent) -> dict:
    """The misp_standard answer: only the non-empty Attribute/Object lists of ``event``."""
    content = json.loads(event.to_json())
    return {"results": {key: content[key] for key in ("Attribute", "Object", "Tag") if content.get(key)}}


def location(
    event_id: str = "", attribute_uuid: str = "", object_uuid: str = "", event_uuid: str = ""
) -> dict:
    """quaid metadata naming a picture's place in MISP (``LOCATION_KEYS``); empty fields left out."""
    values = (event_uuid, event_id, attribute_uuid, object_uuid)
    return {key: str(value) for key, value in zip(LOCATION_KEYS, values, strict=True) if value}


def run_module(work: Callable[[dict], dict], q: Any) -> dict:
    """Parse MISP's request (JSON text or dict) and run ``work``; never raise."""
    try:
        try:
            request = json.loads(q) if isinstance(q, (str, bytes, bytearray)) else q
        except ValueError:
            return {"error": "bad payload: the query is not JSON"}
        if not isinstance(request, dict):
            return {"error": "the query must be a JSON object"}
        return work(request)
    except ModuleError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # the module must answer MISP, whatever happened
        LOGGER.exception("quaid module failed")
        return {"error": f"quaid module failed: {type(exc).__name__}"}
