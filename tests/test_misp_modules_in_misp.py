"""quaid's misp-modules as a MISP instance uses them: queried with MISP's payloads and time limits,
their answers saved into an event the way MISP saves them (:mod:`misp_standin_modules`, read in
MISP 2.5.1), against a real misp-modules server and a real quaid service.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
import test_misp_modules
from drawing import drawn, variant
from misp_standin import MISPStandIn, running
from misp_standin_modules import MISPRefused, ModuleFront
from misp_support import ROOT, start_misp_modules, stop
from test_misp_modules import _silent_server

sys.path.insert(0, str(ROOT / "misp_modules" / "writeback"))
from quaid_misp_sync.cli import main as misp_sync  # noqa: E402
from quaid_misp_sync.pictures import LOCATION_KEYS  # noqa: E402

pytestmark = pytest.mark.misp

quaid_url = test_misp_modules.quaid_url  # the fixtures (a real quaid with references, a real misp-modules)
modules_url = test_misp_modules.modules_url

ACCEPTED_TAGS = {'workflow:state="complete"', 'misp:automation-level="unsupervised"'}


@pytest.fixture
def config(quaid_url):
    return {"url": quaid_url, "api_key": "", "timeout": "", "top": "5", "register": "", "public_url": ""}


def with_data(attribute: dict, data: bytes) -> dict:
    """The attribute as MISP sends it to a module (``base64EncodeAttachment``)."""
    return {**attribute, "data": base64.b64encode(data).decode()}


def test_enrichment_with_matches_saves_without_error_and_references_the_attachment(
    modules_url,
    config,
):
    misp = MISPStandIn()
    event = misp.add_event("phishing", published=True)
    attachment = misp.add_attachment(event, "copy.jpg", variant(drawn(11)))
    front = ModuleFront(misp, modules_url)
    resolved = front.enrich_attribute(
        "quaid_similarity", event, with_data(attachment, variant(drawn(11))), config
    )
    saved = front.save(event, resolved)
    assert saved.message == "" and saved.failed_attributes == 0  # no "1 attribute could not be saved"
    [match] = [o for o in event["Object"] if o["name"] == "image"]
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in match["ObjectReference"]] == [
        (attachment["uuid"], "variant-of")
    ]
    filename = next(a for a in match["Attribute"] if a["object_relation"] == "filename")
    assert filename["value"] == "login-bank.png"
    assert {t["name"] for t in filename["Tag"]} == ACCEPTED_TAGS  # the decision, saved with the object
    assert all(a["to_ids"] is False for a in match["Attribute"])  # no reference file name in IDS exports
    assert not event["published"]  # MISP unpublishes on save


def test_object_enrichment_without_match_says_nothing_found(modules_url, config):
    misp = MISPStandIn()
    event = misp.add_event("phishing")
    obj = misp.add_image_object(event)
    inner = misp.add_attachment(event, "fresh.png", drawn(97), obj=obj)
    payload = {**obj, "Attribute": [with_data(inner, drawn(97))]}
    with pytest.raises(MISPRefused) as refused:
        ModuleFront(misp, modules_url).enrich_object("quaid_similarity", event, payload, config)
    assert str(refused.value) == "quaid: no known picture is the same or nearly the same as fresh.png"


def test_file_object_that_is_not_a_picture_gets_a_one_line_answer(modules_url, config):
    misp = MISPStandIn()
    event = misp.add_event("documents")
    obj = misp.add_image_object(event)
    obj["name"] = "file"
    inner = misp.add_attachment(event, "report.pdf", b"%PDF-1.7 a report", obj=obj)
    payload = {**obj, "Attribute": [with_data(inner, b"%PDF-1.7 a report")]}
    with pytest.raises(MISPRefused) as refused:
        ModuleFront(misp, modules_url).enrich_object("quaid_similarity", event, payload, config)
    assert str(refused.value) == "not a picture: report.pdf is not PNG, JPEG, GIF, BMP, TIFF or WebP"


def test_a_long_timeout_setting_is_capped_under_misps_limit(modules_url, config):
    misp = MISPStandIn()
    event = misp.add_event("phishing")
    attachment = misp.add_attachment(event, "copy.jpg", drawn(11))
    front = ModuleFront(misp, modules_url)
    with _silent_server() as hung:
        started = time.monotonic()
        with pytest.raises(MISPRefused) as refused:
            front.enrich_attribute(
                "quaid_similarity",
                event,
                with_data(attachment, drawn(11)),
                {**config, "url": hung, "timeout": "60"},
            )
    assert "did not answer" in str(refused.value)  # the module's own answer, not MISP's "not reachable"
    assert time.monotonic() - started < 10


def test_import_with_an_empty_tags_field_passes_misps_validation(modules_url, config, quaid_url):
    misp = MISPStandIn()
    event = misp.add_event("references")
    front = ModuleFront(misp, modules_url)
    resolved = front.import_file("quaid_import", event, drawn(301), "brand.png", config, {"tags": ""})
    assert [o["name"] for o in resolved["Object"]] == ["image"]
    record = requests.get(f"{quaid_url}/api/v1/pictures/{hashlib.sha256(drawn(301)).hexdigest()}", timeout=10)
    assert record.status_code == 200 and record.json()["tags"] == []


def test_a_large_import_answers_within_misps_limit_and_hands_the_rest_to_a_job(
    modules_url,
    config,
    quaid_url,
):
    pictures = {f"page-{n:03d}.png": drawn(4000 + n) for n in range(150)}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in pictures.items():
            zf.writestr(name, data)
    misp = MISPStandIn()
    event = misp.add_event("references")
    front = ModuleFront(misp, modules_url)  # MISP's 10 s Import_timeout
    started = time.monotonic()
    resolved = front.import_file(
        "quaid_import", event, archive.getvalue(), "kit.zip", {**config, "timeout": "4"}, {"tags": "kit:x"}
    )
    elapsed = time.monotonic() - started
    assert elapsed < 6
    uploaded = {o["Attribute"][0]["value"]: o for o in resolved["Object"] if not o.get("ObjectReference")}
    assert set(uploaded) == set(pictures), "every picture is in the answer, imported or queued"
    queued = {name for name, o in uploaded.items() if "batch job" in o["comment"]}
    done = len(pictures) - len(queued)
    print(f"import of {len(pictures)} pictures: {done} done, {len(queued)} queued, {elapsed:.1f} s")
    assert queued and len(queued) < len(pictures)
    [job] = {
        o["comment"].split("batch job ")[1].split(" ")[0]
        for o in uploaded.values()
        if "batch job" in o["comment"]
    }
    status = requests.get(f"{quaid_url}/api/v1/jobs/{job}", timeout=10).json()
    assert status["total"] == len(queued)
    for name in set(pictures) - queued:  # the rest were registered now, with their place in MISP
        record = requests.get(
            f"{quaid_url}/api/v1/pictures/{hashlib.sha256(pictures[name]).hexdigest()}", timeout=10
        )
        assert record.json()["tags"] == ["kit:x"]


def test_one_metadata_schema_for_expansion_import_and_write_back(modules_url, config, quaid_url):
    misp = MISPStandIn()
    front = ModuleFront(misp, modules_url)
    # the import registers a reference picture; MISP saves the answer into event "imported"
    imported = misp.add_event("imported", distribution=1)
    resolved = front.import_file("quaid_import", imported, drawn(311), "genuine.png", config, {"tags": ""})
    front.save(imported, resolved)
    # the expansion registers an attachment of event "enriched"
    enriched = misp.add_event("enriched", distribution=1)
    shot = misp.add_attachment(enriched, "shot.png", drawn(312))
    with pytest.raises(MISPRefused):  # nothing known yet: "no known picture", registered all the same
        front.enrich_attribute(
            "quaid_similarity", enriched, with_data(shot, drawn(312)), {**config, "register": "1"}
        )
    for data in (drawn(311), drawn(312)):
        record = requests.get(
            f"{quaid_url}/api/v1/pictures/{hashlib.sha256(data).hexdigest()}", timeout=10
        ).json()
        assert set(record["metadata"]) <= set(LOCATION_KEYS) and "misp_attribute_uuid" in record["metadata"]
    # the write-back, run on a third event with copies of both, finds both places through that metadata
    third = misp.add_event("third")
    misp.add_attachment(third, "a.jpg", variant(drawn(311)))
    misp.add_attachment(third, "b.jpg", variant(drawn(312)))
    with running(misp) as url:
        assert misp_sync(["--url", url, "--key", misp.key, "--quaid", quaid_url, "--event", third["id"]]) == 0
    named = " ".join(o["comment"] for o in third["Object"])
    assert imported["uuid"] in named and enriched["uuid"] in named


def test_the_schema_is_the_same_in_the_modules_and_the_write_back():
    path = ROOT / "misp_modules" / "quaid_misp_common.py"
    spec = importlib.util.spec_from_file_location("quaid_misp_common_under_test", path)
    common = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(common)
    assert common.LOCATION_KEYS == LOCATION_KEYS
    assert common.location("7", "a-uuid", "o-uuid") == {
        "misp_event_id": "7",
        "misp_attribute_uuid": "a-uuid",
        "misp_object_uuid": "o-uuid",
    }


# -- zip bombs ---------------------------------------------------------------------------------


def bomb(members: int, size: int) -> bytes:
    """A zip of ``members`` files, each a PNG signature followed by ``size`` zero bytes (~1000:1)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for n in range(members):
            zf.writestr(f"shot-{n}.png", b"\x89PNG\r\n\x1a\n" + bytes(size))
    return archive.getvalue()


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def test_a_zip_bomb_is_read_member_by_member_under_a_budget(tmp_path, config):
    data = bomb(12, 45 * 1024 * 1024)  # 540 MiB decompressed from about half a MiB
    assert len(data) < 1024 * 1024
    process, url = start_misp_modules(tmp_path)
    try:
        before = peak_rss_mib(process.pid)
        payload = {"module": "quaid_import", "data": base64.b64encode(data).decode(), "config": config}
        answer = requests.post(f"{url}/query", json=payload, timeout=60).json()
        growth = peak_rss_mib(process.pid) - before
    finally:
        stop(process)
    assert "error" in answer and "not read: the zip passes 64 MiB decompressed" in answer["error"]
    print(f"misp-modules peak RSS grew by {growth:.0f} MiB for a {len(data) / 1024:.0f} KiB zip of 540 MiB")
    assert growth < 200


# -- the header quaid requires on writes (no cross-site form or no-cors fetch can send it) --------


class _recording_quaid:
    """A quaid look-alike that records the headers of every request and finds nothing."""

    def __enter__(self) -> _recording_quaid:
        from flask import Flask, jsonify, request
        from werkzeug.serving import make_server

        self.headers: list[tuple[str, dict]] = []
        app = Flask("recording-quaid")

        @app.post("/api/v1/<path:path>")
        def record(path):
            self.headers.append((path, dict(request.headers)))
            if path == "search":
                return jsonify(decision="rejected", matches=[])
            return jsonify(id="0" * 64, status="added", cluster=1), 201

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


def test_every_quaid_call_carries_the_request_header(modules_url, config):
    from quaid_client import QuaidClient  # the write-back's client

    with _recording_quaid() as recorder:
        url = recorder.url
        attribute = {
            "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "type": "attachment",
            "value": "a.png",
            "data": base64.b64encode(drawn(5)).decode(),
        }
        payload = {
            "module": "quaid_similarity",
            "event_id": "7",
            "attribute": attribute,
            "config": {**config, "url": url, "register": "1"},
        }
        assert (
            "no known picture"
            in requests.post(f"{modules_url}/query", json=payload, timeout=30).json()["error"]
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("b.png", drawn(6))
        payload = {
            "module": "quaid_import",
            "event_id": "7",
            "data": base64.b64encode(archive.getvalue()).decode(),
            "config": {**config, "url": url},
        }
        assert "results" in requests.post(f"{modules_url}/query", json=payload, timeout=30).json()
        QuaidClient(url).add(drawn(7), "c.png")
        QuaidClient(url).search(drawn(7), 5, name="c.png")
    assert [path for path, _ in recorder.headers] == [
        "search",
        "pictures",
        "search",
        "pictures",
        "pictures",
        "search",
    ]
    assert all(headers.get("X-Quaid-Request") == "1" for _, headers in recorder.headers)


def test_standin_refuses_an_empty_required_string_as_misp_does(modules_url, config, monkeypatch):
    """Without ``"validation": "0"`` an empty String field stops the import before the module is called."""
    front = ModuleFront(MISPStandIn(), modules_url)
    meta = front.module("quaid_import")
    del meta["mispattributes"]["userConfig"]["tags"]["validation"]
    monkeypatch.setattr(front, "module", lambda name: meta)
    monkeypatch.setattr(front, "_query", lambda *a: pytest.fail("the module must not be called"))
    with pytest.raises(MISPRefused, match="^Tags: Field cannot be empty.$"):
        front.import_file("quaid_import", {"id": "1"}, drawn(1), "a.png", config, {"tags": ""})
