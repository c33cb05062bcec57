"""misp-modules expansion: which known pictures are the same or nearly the same as this one?

Runs in MISP's enrichment (one click on an attachment, within MISP's 10 s limit): sends the
picture to the quaid service (``POST /api/v1/search``) and answers, in misp_standard format,
one ``image`` object per accepted or to-review match (filename, link to the match in quaid's
web UI, the match's picture with correlation disabled, quaid's explanation as comment), each
referencing the queried attribute or object (``variant-of`` when accepted, ``similar`` when
to review). The queried attribute comes back with the decision tags (``workflow``,
``misp:automation-level`` taxonomies). With ``register`` set, the picture is also added to
quaid, with the MISP event and attribute as metadata.

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
        "input, tagged with the decision (workflow, misp:automation-level), explained in the comment."
    ),
    "references": ["https://github.com/CIRCL/douglas-quaid"],
    "input": "attachment or malware-sample attribute; image or file object with a picture attachment",
    "output": "image objects (filename, quaid link, picture) with similar/variant-of references and tags",
}
moduleconfig = ["url", "api_key", "timeout", "top", "register"]


def handler(q=False):
    """misp-modules entry point (``q`` is the JSON text of MISP's request); never raises."""
    if q is False:
        return False
    return common.run_module(expand, q)


def expand(request: dict) -> dict:
    config = common.Config.from_request(request)
    submitted = read_input(request)
    client = common.QuaidClient(config)
    answer = client.search(submitted.data, submitted.filename, config.top)
    if config.register:
        metadata = {"misp_event_id": str(request.get("event_id") or ""), "misp_uuid": submitted.source_uuid}
        client.add(submitted.data, submitted.filename, metadata={k: v for k, v in metadata.items() if v})
    own_id = hashlib.sha256(submitted.data).hexdigest()
    matches = [m for m in answer.get("matches") or [] if _answered(m, own_id)]
    event = MISPEvent()
    if matches and submitted.source.get("type") in INPUT_ATTRIBUTES and submitted.source_uuid:
        common.echo_attribute(event, submitted.source, _best(matches))
    for match in matches[: config.top]:
        event.add_object(common.match_object(client, match, submitted.source_uuid))
    return common.results(event)


def read_input(request: dict):
    """The picture of the request: a misp_standard attribute or object, or a legacy payload."""
    attribute = request.get("attribute")
    if isinstance(attribute, dict):
        if attribute.get("type") not in INPUT_ATTRIBUTES:
            raise common.ModuleError(f"unsupported attribute type {attribute.get('type')!r}")
        data, filename = common.picture_from_attribute(attribute)
        return common.Submitted(data, filename, str(attribute.get("uuid") or ""), attribute)
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
    for attribute in obj.get("Attribute") or []:
        if isinstance(attribute, dict) and attribute.get("type") in INPUT_ATTRIBUTES and "data" in attribute:
            data, filename = common.picture_from_attribute(attribute)
            return common.Submitted(data, filename, str(obj.get("uuid") or ""), obj)
    raise common.ModuleError(f"the {obj.get('name')} object has no attachment or malware-sample with data")


def _answered(match: dict, own_id: str) -> bool:
    """Accepted or to-review, and not the submitted picture itself."""
    return match.get("decision") in ANSWERED and match.get("id") != own_id


def _best(matches: list[dict]) -> str:
    return "accepted" if any(m.get("decision") == "accepted" for m in matches) else "to-review"


def introspection():
    return mispattributes


def version():
    moduleinfo["config"] = moduleconfig
    return moduleinfo
