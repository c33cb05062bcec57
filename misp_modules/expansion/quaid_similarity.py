"""misp-modules expansion: which known pictures are the same or nearly the same as this one?

Runs in MISP's enrichment (one click on an attachment, within MISP's 10 s limit): sends the
picture to the quaid service (``POST /api/v1/search``) and answers, in misp_standard format,
one ``image`` object per accepted or to-review match (filename, link to the match in quaid's
web UI, the match's picture with correlation disabled, quaid's explanation as comment), each
referencing the queried attribute or object (``variant-of`` when accepted, ``similar`` when
to review). The decision tags (``workflow``, ``misp:automation-level`` taxonomies) sit on the
match objects' attributes. The queried attribute is not echoed back: MISP would try to create
it again, refuse its uuid (``MispAttribute`` uuid isUnique), show "1 attribute could not be
saved" and drop the tags on it; the references reach it without the echo. No match answers
an ``error`` saying so, as MISP's own expansion modules report "nothing found" (MISP throws on
an object enrichment that returns nothing). With ``register`` set, the picture is also added
to quaid, with its MISP location (event id, attribute and object uuids) as metadata.

Inputs, as MISP sends them: an ``attachment`` or ``malware-sample`` attribute (bytes base64
in ``attribute.data``; a malware-sample is MISP's zip with password ``infected``), or an
``image`` / ``file`` object holding such an attribute. The legacy (non misp_standard)
payload ``{"attachment": name, "data": ...}`` is read too.

Loaded from the custom root: ``misp-modules -c <repo>/misp_modules``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from pymisp import MISPEvent


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

INPUT_ATTRIBUTES = ["attachment", "malware-sample"]
INPUT_OBJECTS = ["image", "file"]
ANSWERED = ("accepted", "to-review")

mispattributes = {
    "input": INPUT_ATTRIBUTES + INPUT_OBJECTS,
    "output": ["MISP objects"],
    "format": "misp_standard",
}
moduleinfo = {
    "version": "1.0",
    "author": "quaid",
    "description": "Find known pictures that are the same or nearly the same as an attachment (quaid).",
    "module-type": ["expansion"],
    "name": "quaid picture similarity",
    "logo": "",
    "requirements": ["A reachable quaid service (quaid serve) and, when it requires one, an API key"],
    "features": (
        "Sends the picture of an attachment, a malware-sample (zip, password 'infected') or an image/file "
        "object to quaid and returns one image object per accepted or to-review match, referenced from the "
        "input, tagged with the decision (workflow, misp:automation-level), explained in the comment. "
        "Settings: url (quaid API as misp-modules reaches it), api_key, timeout (seconds, at most 9: MISP "
        "waits 10), top, register, public_url (quaid's web UI as analysts reach it, for the links)."
    ),
    "references": ["https://github.com/CIRCL/douglas-quaid"],
    "input": "attachment or malware-sample attribute; image or file object with a picture attachment",
    "output": "image objects (filename, quaid link, picture) with similar/variant-of references and tags",
}
moduleconfig = ["url", "api_key", "timeout", "top", "register", "public_url"]


def handler(q=False):
    """misp-modules entry point (``q`` is the JSON text of MISP's request); never raises."""
    if q is False:
        return False
    return common.run_module(expand, q)


def expand(request: dict) -> dict:
    config = common.Config.from_request(request)
    submitted = read_input(request)
    if not common.is_picture(submitted.data):
        raise common.ModuleError(
            f"not a picture: {submitted.filename or 'the file'} is not PNG, JPEG, GIF, BMP, TIFF or WebP"
        )
    with common.ModuleClient(config) as quaid:
        answer = quaid.search(submitted.data, submitted.filename, config.top)
        if config.register:
            quaid.add(submitted.data, submitted.filename, metadata=_location(request, submitted))
        own_id = hashlib.sha256(submitted.data).hexdigest()
        matches = [m for m in answer.get("matches") or [] if _answered(m, own_id)]
        if not matches:
            registered = " (registered in quaid)" if config.register else ""
            name = submitted.filename or "this one"
            raise common.ModuleError(
                f"quaid: no known picture is the same or nearly the same as {name}{registered}"
            )
        event = MISPEvent()
        for match in matches[: config.top]:
            event.add_object(common.match_object(quaid, match, submitted.source_uuid))
    return common.results(event)


def _location(request: dict, submitted) -> dict:
    """Where the picture is in MISP: the event, the attachment attribute, its object if any."""
    source = submitted.source
    if source.get("name") in INPUT_OBJECTS:  # an object: the picture is one of its attributes
        return common.location(
            str(request.get("event_id") or ""), submitted.attribute_uuid, source.get("uuid", "")
        )
    object_id = str(source.get("object_id") or "0")
    return common.location(
        str(request.get("event_id") or source.get("event_id") or ""),
        str(source.get("uuid") or ""),
        str(source.get("object_uuid") or "") if object_id != "0" else "",
    )


def read_input(request: dict):
    """The picture of the request: a misp_standard attribute or object, or a legacy payload."""
    attribute = request.get("attribute")
    if isinstance(attribute, dict):
        if attribute.get("type") not in INPUT_ATTRIBUTES:
            raise common.ModuleError(f"unsupported attribute type {attribute.get('type')!r}")
        data, filename = common.picture_from_attribute(attribute)
        uuid = str(attribute.get("uuid") or "")
        return common.Submitted(data, filename, uuid, attribute, uuid)
    obj = request.get("object")
    if isinstance(obj, dict):
        return _from_object(obj)
    for kind in INPUT_ATTRIBUTES:
        if kind in request:  # legacy format: {"attachment": "name", "data": "<base64>"}
            legacy = {"type": kind, "value": request[kind], "data": request.get("data")}
            data, filename = common.picture_from_attribute(legacy)
            return common.Submitted(data, filename, "", legacy)
    raise common.ModuleError("bad payload: expected an attachment or malware-sample attribute, or an object")


def _from_object(obj: dict):
    if obj.get("name") not in INPUT_OBJECTS:
        raise common.ModuleError(f"unsupported object {obj.get('name')!r}: expected image or file")
    attributes = obj.get("Attribute") or []
    if not isinstance(attributes, list):
        raise common.ModuleError(f"the {obj.get('name')} object's 'Attribute' is not a list")
    for attribute in attributes:
        if isinstance(attribute, dict) and attribute.get("type") in INPUT_ATTRIBUTES and "data" in attribute:
            data, filename = common.picture_from_attribute(attribute)
            return common.Submitted(
                data, filename, str(obj.get("uuid") or ""), obj, str(attribute.get("uuid") or "")
            )
    raise common.ModuleError(f"the {obj.get('name')} object has no attachment or malware-sample with data")


def _answered(match: dict, own_id: str) -> bool:
    """Accepted or to-review, and not the submitted picture itself."""
    return match.get("decision") in ANSWERED and match.get("id") != own_id


def introspection():
    return mispattributes


def version():
    moduleinfo["config"] = moduleconfig
    return moduleinfo
