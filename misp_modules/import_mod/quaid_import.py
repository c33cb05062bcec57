"""misp-modules import: register reference pictures in quaid from MISP's "Populate from" menu.

An analyst uploads a picture, or a zip of pictures (for example the genuine login pages of a
brand), with optional tags (``brand:example``). Each picture is searched in quaid first
(``POST /api/v1/search``, so the analyst sees which known pictures it matches) and then
registered (``POST /api/v1/pictures``; adding the same bytes twice is idempotent). The
answer, in misp_standard format: one ``image`` object per uploaded picture (the picture with
correlation disabled, its name, its quaid link) and one ``image`` object per accepted or
to-review match, referencing the uploaded picture's object.

Loaded from the custom root: ``misp-modules -c <repo>/misp_modules``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
from pathlib import Path

from pymisp import MISPEvent, MISPObject


def load_common():
    """quaid_misp_common.py, loaded once by path (custom-root modules are not a package)."""
    name = "quaid_misp_common"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


common = load_common()

ZIP_MAGIC = b"PK\x03\x04"
ANSWERED = ("accepted", "to-review")

userConfig = {
    "tags": {
        "type": "String",
        "message": "quaid tags for the pictures, comma separated (for example brand:example)",
    },
}
mispattributes = {
    "inputSource": ["file"],
    "output": ["MISP objects"],
    "format": "misp_standard",
}
moduleinfo = {
    "version": "1.0",
    "author": "quaid",
    "description": "Register a picture or a zip of pictures as known references in quaid.",
    "module-type": ["import"],
    "name": "quaid picture import",
    "logo": "",
    "requirements": ["A reachable quaid service (quaid serve) and a read-write API key when it requires one"],
    "features": (
        "Adds the uploaded picture(s) to quaid with the given tags, and returns one image object per picture "
        "plus one image object per accepted or to-review match found among the pictures quaid already knew."
    ),
    "references": ["https://github.com/CIRCL/douglas-quaid"],
    "input": "a picture file, or a zip of picture files",
    "output": "image objects with similar/variant-of references",
}
moduleconfig = ["url", "api_key", "timeout", "top", "register"]


def handler(q=False):
    """misp-modules entry point (``q`` is the JSON text of MISP's request); never raises."""
    if q is False:
        return False
    return common.run_module(import_pictures, q)


def introspection():
    setup = dict(mispattributes)
    setup["userConfig"] = userConfig
    return setup


def version():
    moduleinfo["config"] = moduleconfig
    return moduleinfo


def import_pictures(request: dict) -> dict:
    config = common.Config.from_request(request)
    data = common.decode_base64(request.get("data"))
    filename = str(request.get("filename") or "picture")
    tags = _tags(request)
    pictures = list(common.iter_zip_pictures(data)) if data.startswith(ZIP_MAGIC) else [(filename, data)]
    if not pictures:
        raise common.ModuleError("the zip holds no file")
    raw_register = (request.get("config") or {}).get("register")
    register = config.register or raw_register is None or str(raw_register).strip() == ""  # default: on
    event = MISPEvent()
    errors = []
    for name, picture in pictures:
        client = common.QuaidClient(config)  # one deadline per picture
        try:
            _import_one(client, event, name, picture, tags, str(request.get("event_id") or ""), register)
        except common.ModuleError as exc:
            errors.append(f"{name}: {exc}")
    if errors and len(errors) == len(pictures):
        raise common.ModuleError("; ".join(errors[:5]))
    answer = common.results(event)
    if errors:  # MISP shows results; the skipped files are named on the first object
        answer["results"]["Object"][0]["comment"] += " | skipped: " + "; ".join(errors[:5])
    return answer


def _import_one(
    client, event: MISPEvent, name: str, picture: bytes, tags: tuple, event_id: str, register: bool
) -> None:
    found = client.search(picture, name, client.config.top)
    added = {"status": "searched only (register is off)"}
    if register:
        metadata = {"misp_event_id": event_id} if event_id else None
        added = client.add(picture, name, tags=tags, metadata=metadata)
    picture_id = str(added.get("id") or hashlib.sha256(picture).hexdigest())
    obj = MISPObject("image", standalone=False)
    obj.comment = f"quaid {added.get('status', 'added')}: id {picture_id}" + (
        f", tags {', '.join(tags)}" if tags else ""
    )
    obj.add_attribute("attachment", value=name, data=io.BytesIO(picture), disable_correlation=True)
    obj.add_attribute("filename", value=name, disable_correlation=True)
    obj.add_attribute("link", value=client.ui_link(picture_id), comment=f"quaid id {picture_id}")
    event.add_object(obj)
    matches = [m for m in found.get("matches") or [] if m.get("decision") in ANSWERED]
    matches = [m for m in matches if m.get("id") != picture_id]
    for match in matches[: client.config.top]:
        event.add_object(common.match_object(client, match, obj.uuid))


def _tags(request: dict) -> tuple[str, ...]:
    """userConfig values: MISP puts them in ``config``; read the top level too, to be lenient."""
    config = request.get("config") if isinstance(request.get("config"), dict) else {}
    raw = config.get("tags") or request.get("tags") or ""
    if isinstance(raw, list):
        raw = ",".join(str(t) for t in raw)
    return tuple(t.strip() for t in str(raw).split(",") if t.strip())
