"""misp-modules import: register reference pictures in quaid from MISP's "Populate from" menu.

An analyst uploads a picture, or a zip of pictures (for example the genuine login pages of a
brand), with optional tags (``brand:example``). Each picture is searched in quaid first
(``POST /api/v1/search``, so the analyst sees which known pictures it matches) and then
registered (``POST /api/v1/pictures``; adding the same bytes twice is idempotent). The
answer, in misp_standard format: one ``image`` object per uploaded picture (the picture with
correlation disabled, its name, its quaid link) and one ``image`` object per accepted or
to-review match, referencing the uploaded picture's object. quaid keeps each picture's place
in MISP (event id, object and attribute uuids of the answer) as metadata for the write-back.

MISP waits at most 10 s for an import (``Plugin.Import_timeout``): the whole import has one
deadline (the ``timeout`` setting, at most 9 s); the pictures that do not fit are handed to a
quaid batch job, reported on their objects. A zip is read member by member under a total
decompressed-size budget, each member under its own cap.

Loaded from the custom root: ``misp-modules -c <repo>/misp_modules``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import time
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
JOB_RESERVE = 1.5  # seconds kept before the deadline to hand the remaining pictures to a batch job
FIRST_PICTURE_GUESS = 0.5  # seconds one picture (search + add) is assumed to take before one is timed

userConfig = {
    "tags": {
        "type": "String",
        "message": "quaid tags for the pictures, comma separated (for example brand:example); may be empty",
        # MISP's importModule refuses an empty String field ("Field cannot be empty.") unless
        # it declares "validation": "0", as MISP's own openiocimport does.
        "validation": "0",
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
moduleconfig = ["url", "api_key", "timeout", "top", "register", "public_url"]


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
    is_zip = data.startswith(ZIP_MAGIC)
    members = list(common.iter_zip_pictures(data)) if is_zip else [common.ZipMember(filename, data)]
    if not members:
        raise common.ModuleError("the zip holds no file")
    raw_register = (request.get("config") or {}).get("register")
    register = config.register or raw_register is None or str(raw_register).strip() == ""  # default: on
    run = _Import(common.ModuleClient(config), _tags(request), str(request.get("event_id") or ""), register)
    try:
        for member in members:
            run.take(member)
        run.hand_over()
    finally:
        run.close()
    if not run.event.objects:
        raise common.ModuleError("; ".join(run.errors[:5]) or "nothing imported")
    answer = common.results(run.event)
    if run.errors:  # MISP shows results; the skipped files are named on the first object
        answer["results"]["Object"][0]["comment"] += " | skipped: " + "; ".join(run.errors[:5])
    return answer


class _Import:
    """One import under one deadline (the module's ``timeout``, below MISP's 10 s
    ``Import_timeout``): pictures are searched and registered one by one while the time left
    allows one more (judged on the median time of those done so far), each under a deadline
    that keeps ``JOB_RESERVE`` for the hand-over; a picture that runs out of time and the rest
    are handed to one quaid batch job (``POST /api/v1/jobs``) whose id their objects' comments
    report, or, with ``register`` off, named as not searched. Nothing is left half-done
    without saying so."""

    def __init__(self, client, tags: tuple, event_id: str, register: bool):
        self.client = client  # its deadline is the import's
        self.work = common.ModuleClient(client.config)  # the same, minus the hand-over's reserve
        self.work.deadline = client.deadline - JOB_RESERVE
        self.tags = tags
        self.event_id = event_id
        self.register = register
        self.event = MISPEvent()
        self.errors: list[str] = []
        self.later: list[tuple[MISPObject, str, bytes]] = []
        self.durations: list[float] = []

    def close(self) -> None:
        self.client.close()
        self.work.close()

    def take(self, member) -> None:
        if member.data is None:
            self.errors.append(f"{member.name}: {member.error}")
            return
        if not common.is_picture(member.data):
            self.errors.append(f"{member.name}: not a picture (PNG, JPEG, GIF, BMP, TIFF or WebP)")
            return
        obj = _picture_object(self.client, member.name, member.data)
        if self.later or self.work.left() < 1.5 * self._typical():
            self.later.append((obj, member.name, member.data))
            return
        started = time.monotonic()
        try:
            self._import_one(obj, member.name, member.data)
        except common.ModuleError as exc:
            if self.work.left() > 0.05:
                self.errors.append(f"{member.name}: {exc}")
            else:  # out of time half-way: the job registers it (adding twice is harmless)
                self.later.append((obj, member.name, member.data))
        self.durations.append(time.monotonic() - started)

    def _typical(self) -> float:
        """Seconds one picture takes: the median so far (the first one warms caches up)."""
        done = sorted(self.durations)
        return done[len(done) // 2] if done else FIRST_PICTURE_GUESS

    def _import_one(self, obj: MISPObject, name: str, picture: bytes) -> None:
        found = self.work.search(picture, name, self.work.config.top)
        status = "searched only (register is off)"
        if self.register:
            added = self.work.add(picture, name, tags=self.tags, metadata=self._location(obj))
            status = added.get("status", "added")
        picture_id = hashlib.sha256(picture).hexdigest()
        noise = common.noise_of(found)
        obj.comment = f"quaid {status}: id {picture_id}" + self._tag_note()
        if noise:  # a blank, error or challenge page: its matches say nothing about the event
            obj.comment += f"; noise ({noise}): matches not shown"
        self.event.add_object(obj)
        if noise:
            return
        matches = [m for m in found.get("matches") or [] if m.get("decision") in ANSWERED]
        for match in [m for m in matches if m.get("id") != picture_id][: self.work.config.top]:
            self.event.add_object(common.match_object(self.work, match, obj.uuid))

    def hand_over(self) -> None:
        """The pictures that did not fit in the time: one batch job, or named as not searched."""
        if not self.later:
            return
        names = ", ".join(name for _, name, _ in self.later[:5]) + (", ..." if len(self.later) > 5 else "")
        if not self.register:
            self.errors.append(f"not searched within MISP's time limit ({len(self.later)}): {names}")
            return
        metadata = common.location(self.event_id)
        try:
            job = self.client.submit_job([(name, data) for _, name, data in self.later], self.tags, metadata)
        except common.ModuleError as exc:
            self.errors.append(f"not registered ({len(self.later)}: {names}): {exc}")
            return
        for obj, _, _ in self.later:
            obj.comment = (
                f"quaid: queued for registration in batch job {job} (GET /api/v1/jobs/{job}); "
                f"not searched: MISP waits at most 10 s for an import{self._tag_note()}"
            )
            self.event.add_object(obj)

    def _location(self, obj: MISPObject) -> dict:
        attachment = obj.get_attributes_by_relation("attachment")[0]
        return common.location(self.event_id, attachment.uuid, obj.uuid)

    def _tag_note(self) -> str:
        return f", tags {', '.join(self.tags)}" if self.tags else ""


def _picture_object(client, name: str, picture: bytes) -> MISPObject:
    """The image object of one uploaded picture: the file (correlation off), its name, its quaid link."""
    obj = MISPObject("image", standalone=False)
    obj.add_attribute(
        "attachment", value=name, data=io.BytesIO(picture), disable_correlation=True, to_ids=False
    )
    obj.add_attribute("filename", value=name, disable_correlation=True, to_ids=False)
    link = client.ui_link(hashlib.sha256(picture).hexdigest())
    obj.add_attribute("link", value=link, comment="quaid", to_ids=False)
    return obj


def _tags(request: dict) -> tuple[str, ...]:
    """userConfig values: MISP puts them in ``config``; read the top level too, to be lenient."""
    config = request.get("config") if isinstance(request.get("config"), dict) else {}
    raw = config.get("tags") or request.get("tags") or ""
    if isinstance(raw, list):
        raw = ",".join(str(t) for t in raw)
    return tuple(t.strip() for t in str(raw).split(",") if t.strip())
