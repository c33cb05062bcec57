"""The bad-input corpus through the MISP modules and the AIL connector.

Their own tests check a few bad payloads each (a PDF, bad base64, a missing ``data``;
one non-picture through the AIL library). Here every case of ``tests/badinput.py`` goes
through every entry point: the misp-modules expansion (attachment, and inside a MISP
malware-sample zip), the import module, the AIL library (:class:`ail_connector.Correlator`)
and the AIL module on a stand-in of AIL. Each case gets a clear one-line error (or a
correct answer for the awkward-but-valid pictures), the processes stay up, a refused
picture is never re-queued for ever, and no stored picture changes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import requests
from ail_host import ail_with_module
from badinput import bad_inputs
from misp_support import malware_sample_zip, start_misp_modules, start_quaid, stop
from reliability_support import store_snapshot

from ail_connector import AILRef, Correlator, Policy
from engine.store import EmbeddedRedis
from quaid_client import QuaidClient, ServiceError

UPLOAD_LIMIT = 3_000_000  # bytes, of the quaid service below
CORPUS = list(bad_inputs()) + [("over-the-limit", os.urandom(UPLOAD_LIMIT + 1), "error")]
SKIPPED_BY_AIL = {"zero-bytes": "empty file", "many-frames-gif": "GIF"}  # AIL's own image modules skip these


@pytest.fixture(scope="module")
def quaid_service():
    home = Path(tempfile.mkdtemp(prefix="quaid-reliability-"))  # own folder: see ail_standin.start_service
    process, url = start_quaid(home, {"QUAID_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    client = EmbeddedRedis(home / "redis").client()
    yield url, process, client
    client.close()
    stop(process, home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def modules_url(tmp_path_factory):
    process, url = start_misp_modules(tmp_path_factory.mktemp("misp-modules"))
    yield url, process
    stop(process)


def assert_unchanged_except_added(before: dict, after: dict, allowed: set[str]) -> None:
    assert {k: v for k, v in after.items() if k in before} == before
    new_ids = {key.decode().split("{")[1].rstrip("}") for key in set(after) - set(before)}
    assert new_ids <= allowed, new_ids - allowed


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --- misp-modules ------------------------------------------------------------------------------

def misp_query(url: str, payload: dict) -> dict:
    answer = requests.post(f"{url}/query", data=json.dumps(payload), timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def attribute(data: bytes, name: str, kind: str) -> dict:
    if kind == "malware-sample":
        value, payload = f"{name}|{'0' * 32}", malware_sample_zip(data, name)
    else:
        value, payload = name, data
    return {"uuid": str(uuid.uuid4()), "type": kind, "value": value, "category": "Payload delivery",
            "data": base64.b64encode(payload).decode()}


@pytest.mark.misp
@pytest.mark.parametrize("kind", ["attachment", "malware-sample"])
def test_corpus_through_the_misp_expansion(quaid_service, modules_url, kind):
    url, quaid_process, store = quaid_service
    modules, modules_process = modules_url
    config = {"url": url, "api_key": "", "timeout": "20", "top": "3", "register": "1"}
    before = store_snapshot(store)
    for name, data, expected in CORPUS:
        payload = {"module": "quaid_similarity", "event_id": "7", "config": config,
                   "attribute": attribute(data, f"{name}.png", kind)}
        answer = misp_query(modules, payload)
        if expected == "ok":  # matches, MISP's "nothing found" answer, or noise (a flat 16x16 frame)
            found_nothing = str(answer.get("error", "")).startswith("quaid: no known picture")
            noise = " is noise (" in str(answer.get("error", ""))
            assert "results" in answer or found_nothing or noise, (name, answer)
        else:
            assert set(answer) == {"error"} and "no known picture" not in answer["error"], (name, answer)
            assert answer["error"] and "\n" not in answer["error"] and "Traceback" not in answer["error"]
    ok = {sha(d) for _, d, e in CORPUS if e == "ok"}
    assert_unchanged_except_added(before, store_snapshot(store), ok)
    assert modules_process.poll() is None and quaid_process.poll() is None


@pytest.mark.misp
def test_corpus_through_the_misp_import_module(quaid_service, modules_url):
    url, _, store = quaid_service
    modules, modules_process = modules_url
    before = store_snapshot(store)
    for name, data, expected in CORPUS:
        payload = {"module": "quaid_import", "event_id": "9", "filename": f"{name}.png",
                   "data": base64.b64encode(data).decode(), "config": {"url": url, "timeout": "20"}}
        answer = misp_query(modules, payload)
        if expected == "ok":
            assert "results" in answer, (name, answer)
        else:
            assert "error" in answer and answer["error"] and "\n" not in answer["error"], (name, answer)
    assert_unchanged_except_added(before, store_snapshot(store), {sha(d) for _, d, e in CORPUS if e == "ok"})
    assert modules_process.poll() is None


# --- AIL ---------------------------------------------------------------------------------------

def test_corpus_through_the_ail_library(quaid_service):
    url, quaid_process, store = quaid_service
    correlator = Correlator(QuaidClient(url), Policy(), lambda ident: None, lambda ref: True)
    before = store_snapshot(store)
    for name, data, expected in CORPUS:
        subject = AILRef("image", sha(data))
        if name in SKIPPED_BY_AIL:
            assert correlator.process(subject, data).reason == SKIPPED_BY_AIL[name]
        elif expected == "ok":
            outcome = correlator.process(subject, data)
            assert outcome.status == "processed" and outcome.added in ("added", "duplicate"), name
        else:
            with pytest.raises(ServiceError) as refused:
                correlator.process(subject, data)
            assert refused.value.status in (413, 415), (name, refused.value)
            assert str(refused.value).startswith(f"HTTP {refused.value.status}: ")
    allowed = {sha(d) for n, d, e in CORPUS if e == "ok" and n not in SKIPPED_BY_AIL}
    assert_unchanged_except_added(before, store_snapshot(store), allowed)
    assert quaid_process.poll() is None


@pytest.fixture
def ail(tmp_path, quaid_service):
    url = quaid_service[0]
    with ail_with_module(tmp_path / "ail", f"[Quaid]\nurl = {url}\nsweep_screenshots = false\n") as world:
        yield world


def test_corpus_through_the_ail_module_is_never_requeued(ail, quaid_service):
    store = quaid_service[2]
    before = store_snapshot(store)
    ids = {name: ail.add_image(data) for name, data, _ in CORPUS}
    for obj_id in ids.values():
        ail.push("QuaidImages", f"image::{obj_id}", "feeder")
    module = ail.module_class()
    module.run_rounds(len(CORPUS) + 3)  # an exception from computeNone would end the module (ModuleDied)
    assert ail.errors == []  # nothing escaped compute either (AIL would log it and drop the message)
    assert ail.sent_back == [] and ail.queues["QuaidImages"] == []  # refused pictures are not retried
    assert module.can_process_next_message()  # a 4xx is not mistaken for the service being down
    refused = {f"image::{ids[n]}" for n, _, e in CORPUS if e == "error"}
    assert not [line for line in ail.queues.get("Tags", []) if line.split(";")[0] in refused]
    assert not [pair for pair in ail.correlations if set(pair) & refused]
    allowed = {sha(d) for n, d, e in CORPUS if e == "ok" and n not in SKIPPED_BY_AIL}
    assert_unchanged_except_added(before, store_snapshot(store), allowed)
