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
an object enrichment that returns nothing); so does a picture quaid answers as noise (a blank,
error, challenge or placeholder page, or a copy of a picture in quaid's noise bank): nothing is
created, tagged or referenced for it. With ``register`` set, the picture is also added
to quaid, with its MISP location (event id, attribute and object uuids) as metadata.

Brand look-alikes: MISP sends the enriched attribute or object, not its event, so the domain
the picture was seen on comes from the enriched object's own ``url`` / ``domain`` /
``hostname`` attributes (an ``image`` object's ``url``, say). When the picture matches a brand
baseline stored in quaid and one of those domains is not the brand's, quaid answers
``phishing-suspected``: the match object also gets ``phishing:techniques="fake-website"`` and
its comment names the brand. A ``cert-pl-phishing`` object's ``url`` goes with its hash the same
way. (``quaid misp-sync`` reads the domains of the whole event.)

Inputs, as MISP sends them: an ``attachment`` or ``malware-sample`` attribute (bytes base64
in ``attribute.data``; a malware-sample is MISP's zip with password ``infected``), or an
``image`` / ``file`` object holding such an attribute. The legacy (non misp_standard)
payload ``{"attachment": name, "data": ...}`` is read too.

A partner's picture hash, with no picture, is answered too (``POST /api/v1/search/hashes``):
a ``cert-pl-phishing`` object's ``phash-dct-base64`` (perception's pHash, as CERT Polska
shares it), or a ``text`` attribute holding one (its ``object_relation`` is
``phash-dct-base64``, or its value has that form: 12 base64 characters) or a PDQ hash
(64 hex digits). Hashes alone never give an accepted match: each match is ``to-review``,
its comment says ``hashes-only``.

Loaded from the custom root: ``misp-modules -c <repo>/misp_modules``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
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
HASH_ATTRIBUTES = ["text"]  # a picture hash shared as text (cert-pl-phishing's phash-dct-base64)
HASH_OBJECTS = ["cert-pl-phishing"]
PERCEPTION_RELATION = "phash-dct-base64"
PERCEPTION_VALUE = re.compile(r"^[A-Za-z0-9+/]{11}=$")
PDQ_VALUE = re.compile(r"^[0-9a-fA-F]{64}$")
ANSWERED = ("accepted", "to-review")
# Attribute types naming where a picture was seen: their host is the domain quaid judges brands by.
DOMAIN_TYPES = ("url", "domain", "hostname", "domain|ip", "hostname|port")
MAX_DOMAINS = 50  # hosts sent with one search (quaid refuses more)

mispattributes = {
    "input": INPUT_ATTRIBUTES + INPUT_OBJECTS + HASH_ATTRIBUTES + HASH_OBJECTS,
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
    "input": "attachment or malware-sample attribute; image or file object with a picture attachment; "
             "a picture hash: cert-pl-phishing object (phash-dct-base64), or text attribute (pHash, PDQ)",
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
    shared = read_hashes(request)
    if shared is not None:
        obj = request.get("object") if isinstance(request.get("object"), dict) else {}
        return _expand_hashes(config, *shared, domains_in(obj.get("Attribute")))  # cert-pl-phishing's url
    submitted = read_input(request)
    if not common.is_picture(submitted.data):
        raise common.ModuleError(
            f"not a picture: {submitted.filename or 'the file'} is not PNG, JPEG, GIF, BMP, TIFF or WebP"
        )
    with common.ModuleClient(config) as quaid:
        domains = domains_in(submitted.source.get("Attribute"))  # an object's own URLs
        answer = quaid.search(submitted.data, submitted.filename, config.top, domains)
        if config.register:
            quaid.add(submitted.data, submitted.filename, metadata=_location(request, submitted))
        own_id = hashlib.sha256(submitted.data).hexdigest()
        noise = common.noise_of(answer)
        if noise:
            raise common.ModuleError(f"quaid: {submitted.filename or 'this picture'} is noise ({noise}): "
                                     "pictures like it match unrelated sites, so nothing is correlated")
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


def _expand_hashes(config, hashes: dict[str, str], source_uuid: str, domains: list[str]) -> dict:
    """Matches of a partner's hashes: image objects, each to review (hashes alone never accept)."""
    with common.ModuleClient(config) as quaid:
        answer = quaid.search_hashes(hashes, config.top, domains)
        noise = common.noise_of(answer)
        if noise:
            raise common.ModuleError(f"quaid: these hashes are a noise picture's ({noise}): "
                                     "nothing is correlated")
        matches = [m for m in answer.get("matches") or [] if m.get("decision") in ANSWERED]
        if not matches:
            raise common.ModuleError(f"quaid: no known picture is near {', '.join(sorted(hashes))} "
                                     f"{' '.join(hashes.values())}")
        event = MISPEvent()
        for match in matches[: config.top]:
            event.add_object(common.match_object(quaid, match, source_uuid))
    return common.results(event)


def read_hashes(request: dict) -> tuple[dict[str, str], str] | None:
    """A partner's picture hash in the request, with the uuid to reference; None when it holds none."""
    attribute = request.get("attribute")
    if isinstance(attribute, dict) and attribute.get("type") in HASH_ATTRIBUTES:
        return hash_of_text(attribute), str(attribute.get("uuid") or "")
    obj = request.get("object")
    if isinstance(obj, dict) and obj.get("name") in HASH_OBJECTS:
        for inner in obj.get("Attribute") or []:
            if isinstance(inner, dict) and inner.get("object_relation") == PERCEPTION_RELATION:
                return hash_of_text(inner), str(obj.get("uuid") or "")
        raise common.ModuleError(f"the {obj['name']} object has no {PERCEPTION_RELATION} attribute")
    return None


def hash_of_text(attribute: dict) -> dict[str, str]:
    """``{hash name: value}`` of a text attribute holding a picture hash; ModuleError otherwise."""
    value = str(attribute.get("value") or "").strip()
    if attribute.get("object_relation") == PERCEPTION_RELATION or PERCEPTION_VALUE.match(value):
        return {"phash_dct_base64": value}
    if PDQ_VALUE.match(value):
        return {"pdq": value.lower()}
    raise common.ModuleError("not a picture hash: expected perception's pHash (phash-dct-base64, "
                             "12 base64 characters) or a PDQ hash (64 hex digits)")


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


def domains_in(attributes) -> list[str]:
    """The hosts, URLs and domains among MISP attributes (``DOMAIN_TYPES``; a composite value
    keeps its first part), in order, without repeats, at most ``MAX_DOMAINS``."""
    found: list[str] = []
    for attribute in attributes if isinstance(attributes, list) else ():
        if not isinstance(attribute, dict) or attribute.get("type") not in DOMAIN_TYPES:
            continue
        value = str(attribute.get("value") or "").split("|")[0].strip()
        if value and value not in found:
            found.append(value)
    return found[:MAX_DOMAINS]


def _answered(match: dict, own_id: str) -> bool:
    """Accepted or to-review, and not the submitted picture itself."""
    return match.get("decision") in ANSWERED and match.get("id") != own_id


def introspection():
    return mispattributes


def version():
    moduleinfo["config"] = moduleconfig
    return moduleinfo
