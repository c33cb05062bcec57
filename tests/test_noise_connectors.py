"""The MISP modules, the MISP write-back and the AIL connector tag and correlate nothing for a
picture quaid answers as noise (engine.noise), through the stand-ins of each host.

Each case first shows that the same picture is correlated while its original is not noise, so
that nothing here passes because the connector found nothing to say in the first place.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from ail_standin import page, png, reencoded, sha, start_service
from drawing import drawn, variant
from misp_standin import MISPStandIn, running
from misp_support import start_misp_modules, start_quaid, stop
from PIL import Image

from ail_connector import AILRef, Correlator, Policy
from engine.cli import main as quaid_cli
from tests.test_misp_modules import as_event, attachment, expansion, query

WRITE = {"X-Quaid-Request": "1"}


def blank(colour: str = "white", size: tuple[int, int] = (1280, 800)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def add(url: str, data: bytes, name: str) -> dict:
    answer = requests.post(f"{url}/api/v1/pictures", files={"file": (name, data)}, data={"name": name},
                           headers=WRITE, timeout=30)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def mark(url: str, picture_id: str) -> None:
    answer = requests.post(f"{url}/api/v1/pictures/{picture_id}/noise", headers=WRITE, timeout=30)
    assert answer.status_code == 200, answer.text


# --- MISP ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quaid_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("quaid-home")
    process, url = start_quaid(home)
    yield url
    stop(process, home)


@pytest.fixture(scope="module")
def modules_url(tmp_path_factory):
    process, url = start_misp_modules(tmp_path_factory.mktemp("misp-modules"))
    yield url
    stop(process)


@pytest.fixture
def config(quaid_url):
    return {"url": quaid_url, "api_key": "", "timeout": "8", "top": "5", "register": ""}


@pytest.mark.misp
def test_the_expansion_answers_a_copy_of_a_noise_picture_with_an_error_and_no_object(
        modules_url, config, quaid_url):
    original = add(quaid_url, drawn(501), "captcha.png")
    copy = attachment(variant(drawn(501)), "copy.jpg")
    assert len(as_event(query(modules_url, expansion(copy, config))["results"]).objects) == 1

    mark(quaid_url, original["id"])
    answer = query(modules_url, expansion(copy, config))
    assert "results" not in answer
    assert "noise" in answer["error"] and original["id"] in answer["error"]


@pytest.mark.misp
def test_the_expansion_answers_a_blank_capture_as_noise(modules_url, config, quaid_url):
    add(quaid_url, blank(), "blank.png")  # stored in the noise bank by the detector
    answer = query(modules_url, expansion(attachment(blank("#fefefe", (1366, 768))), config))
    assert "results" not in answer and "noise" in answer["error"]


@pytest.mark.misp
def test_the_import_keeps_the_picture_but_shows_no_match_for_noise(modules_url, config, quaid_url):
    original = add(quaid_url, drawn(502), "parked.png")
    payload = {"module": "quaid_import", "filename": "copy.jpg", "config": config,
               "data": base64.b64encode(variant(drawn(502))).decode()}
    assert len(as_event(query(modules_url, payload)["results"]).objects) == 2  # the picture and its match

    mark(quaid_url, original["id"])
    mark(quaid_url, hashlib.sha256(variant(drawn(502))).hexdigest())  # the copy the import registered
    payload["data"] = base64.b64encode(variant(drawn(502), scale=0.8)).decode()
    [uploaded] = as_event(query(modules_url, payload)["results"]).objects
    assert "noise" in uploaded.comment and not uploaded.references


def two_events(misp: MISPStandIn, first: bytes, second: bytes) -> tuple[dict, dict, dict, dict]:
    e1 = misp.add_event("capture A", date="2026-11-20")
    a1 = misp.add_attachment(e1, "shot.png", first)
    e2 = misp.add_event("capture B", date="2026-11-21")
    a2 = misp.add_attachment(e2, "shot.jpg", second)
    return e1, a1, e2, a2


@pytest.mark.misp
def test_the_write_back_records_nothing_for_noise_pictures(quaid_url, capsys):
    def sync(url: str) -> int:
        return quaid_cli(["misp-sync", "--url", url, "--key", "misp-test-key", "--quaid", quaid_url,
                          "--since", "2026-11-01"])

    misp = MISPStandIn()
    e1, _, e2, _ = two_events(misp, drawn(503), variant(drawn(503)))
    with running(misp) as url:
        assert sync(url) == 0
    assert e1["Object"] and e2["Object"]  # the two events are correlated while nothing is noise

    misp = MISPStandIn()  # the same two pictures, now in the noise bank
    two_events(misp, drawn(503), variant(drawn(503)))
    for picture in (drawn(503), variant(drawn(503))):
        mark(quaid_url, hashlib.sha256(picture).hexdigest())
    blank_events = two_events(misp, blank(), blank())  # the same blank capture in two events
    with running(misp) as url:
        assert sync(url) == 0
    assert misp.writes == []
    assert "pictures answered as noise (nothing recorded): 4" in capsys.readouterr().out
    assert blank_events[0]["Object"] == [] and blank_events[2]["Object"] == []


# --- AIL ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service():
    home = Path(tempfile.mkdtemp(prefix="quaid-noise-ail-"))
    proc = start_service(home)
    yield proc
    proc.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_the_ail_connector_tags_and_correlates_nothing_for_noise(service):
    from quaid_client import QuaidClient

    client = QuaidClient(service.url)
    refs: dict[str, AILRef] = {}
    correlator = Correlator(client, Policy(correlate_to_review=True), refs.get, lambda ref: True)

    def process(data: bytes, kind: str = "screenshot"):
        ref = AILRef(kind, sha(data))
        refs[ref.id] = ref
        return correlator.process(ref, data).plan

    known = png(page(601))
    process(known)
    assert process(reencoded(page(601)), "image").correlations  # a copy correlates while not noise

    for noise in (known, reencoded(page(601))):  # the page and the copy stored above
        mark(service.url, sha(noise))
    plan = process(png(page(601), compress_level=3), "image")
    assert plan.noise == "matches-noise" and plan.tags == () and plan.correlations == ()

    process(blank())
    plan = process(blank("#fdfdfd", (1366, 768)))
    assert plan.noise and plan.tags == () and plan.correlations == ()


def test_ail_import_reports_no_pair_for_noise_screenshots():
    from PIL import Image as PILImage

    from ail_connector.ail_objects import rel_path
    from tests.test_ail_import import quaid as run_quaid

    folder = Path(tempfile.mkdtemp(prefix="quaid-noise-ail-import-")) / "screenshot"
    home = folder.parent / "home"
    white = PILImage.new("RGB", (1280, 800), "white")
    files = {"page": png(page(611)), "copy": reencoded(page(611)), "blank": png(white),
             "blank again": reencoded(white)}
    for data in files.values():
        path = folder / rel_path(sha(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    try:
        run = run_quaid(["ail-import", str(folder), "--json"], home)
        assert run.returncode == 0, run.stderr
        pairs = [json.loads(line) for line in run.stdout.splitlines()]
        assert [{p["screenshot"], p["match"]} for p in pairs] == [{sha(files["page"]), sha(files["copy"])}]
        assert "2 noise (no pair reported)" in run.stderr
    finally:
        from engine.store import EmbeddedRedis

        EmbeddedRedis(home / "redis").stop()
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_the_ail_module_tags_and_correlates_nothing_for_a_copy_of_a_noise_screenshot(tmp_path, service):
    from ail_host import ail_with_module

    from tests.test_ail_module import quick_cfg

    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path)) as ail:
        ail.apply_correlation_patch()  # so that a correlation, were one made, would be written
        shot = ail.add_screenshot(png(page(621)))
        copy = ail.add_image(reencoded(page(621)))
        module = ail.module_class()
        module.run_rounds(1)  # idle: the sweep indexes the screenshot
        mark(service.url, shot)
        ail.push("QuaidImages", f"image::{copy}")
        module.run_rounds(1)
        assert ail.queues.get("Tags", []) == [] and ail.correlations == set() and ail.errors == []
        record = requests.get(f"{service.url}/api/v1/pictures/{copy}", timeout=10).json()
        assert record["noise"] == {**record["noise"], "reason": "matches-noise", "picture": shot}
