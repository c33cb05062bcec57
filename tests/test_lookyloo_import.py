"""``quaid lookyloo-import`` against a stand-in of Lookyloo's API (tests/lookyloo_standin.py, written
from Lookyloo 1.40.0 def517a6 and PyLookyloo db81a250; the real PyLookyloo client, 1.43.0, makes
the requests).
"""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from lookyloo_standin import LookylooStandIn, running

from engine.cli import main
from engine.cli.lookyloo import ledger_path, parse_since
from engine.config import load_settings
from engine.core import Quaid
from quaid_client import QuaidClient
from tests.test_orb import site_page

KEY = "lookyloo-key-for-tests"


def png(image, level: int = 6) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=level)
    return out.getvalue()


def rows(capsys) -> dict[str, dict]:
    out = capsys.readouterr().out
    return {row["capture"]: row for row in map(json.loads, out.splitlines())}


@pytest.fixture
def lookyloo():
    """Captures of a phishing copy and of the brand's own site (same pixels, other PNG bytes), an
    unlisted one, an old one, one without a screenshot and one whose 'PNG' is not a picture."""
    standin = LookylooStandIn(api_keys=(KEY,))
    login = site_page(21)
    ids = {
        "phish": standin.capture("https://t.example/x", png(login, 1), hours_ago=3,
                                 redirects=("https://t.example/y", "https://acme.example.evil.test/login")),
        "legit": standin.capture("https://t.example/acme", png(login, 3), hours_ago=2,  # lands on the brand
                                 redirects=("https://www.acme.example/",)),
        "unlisted": standin.capture("https://hidden.test/", png(site_page(22, heading="Other")),
                                    public=False),
        "old": standin.capture("https://old.test/", png(site_page(23, heading="Archive")), hours_ago=48),
        "no-shot": standin.capture("https://broken.test/", None),
        "garbage": standin.capture("https://garbage.test/", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
    }
    with running(standin) as url:
        yield standin, url, ids, png(login)


def test_import_stores_captures_with_their_urls_and_reports_brand_look_alikes(local_store, tmp_path, capsys,
                                                                                lookyloo):
    standin, url, ids, baseline = lookyloo
    (tmp_path / "acme.png").write_bytes(baseline)
    baseline_file = str(tmp_path / "acme.png")
    assert main(["add", baseline_file, "--brand", "Acme", "--domain", "acme.example", "--json"]) == 0
    brand_id = json.loads(capsys.readouterr().out)["id"]

    assert main(["lookyloo-import", "--url", url, "--json"]) == 1  # two captures fail, alone
    first = rows(capsys)
    assert set(first) == {ids["phish"], ids["legit"], ids["no-shot"], ids["garbage"]}  # listed, last day
    phish, legit = first[ids["phish"]], first[ids["legit"]]
    assert phish["status"] == "added" and phish["domain"] == "acme.example.evil.test"
    assert phish["verdict"] == "phishing-suspected" and phish["brand"]["name"] == "Acme"
    assert phish["similar"][0]["id"] == brand_id and phish["similar"][0]["decision"] == "accepted"
    assert legit["verdict"] == "legitimate"
    assert {s["id"] for s in legit["similar"]} == {brand_id, phish["id"]}  # the earlier capture too
    no_shot = first[ids["no-shot"]]
    assert no_shot["status"] == "error" and "No screenshot available" in no_shot["error"]
    assert first[ids["garbage"]]["status"] == "error"

    with Quaid.open(load_settings()) as quaid:
        record = quaid.get(phish["id"]).to_json()
    assert record["name"] == f"lookyloo:{ids['phish']}" and record["tags"] == ["lookyloo:capture"]
    assert record["metadata"]["url"] == "https://t.example/x"  # as submitted; the page is where it landed
    assert record["metadata"]["landing_url"] == "https://acme.example.evil.test/login"
    assert record["metadata"]["lookyloo_capture"] == ids["phish"] and record["metadata"]["lookyloo"] == url
    assert datetime.fromisoformat(record["metadata"]["capture_time"]).tzinfo is not None


def test_a_second_run_skips_what_is_stored_and_a_key_and_since_reach_further(local_store, capsys, lookyloo):
    standin, url, ids, _ = lookyloo
    assert main(["lookyloo-import", "--url", url, "--json"]) == 1
    capsys.readouterr()
    standin.requests.clear()
    since = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    assert main(["lookyloo-import", "--url", url, "--since", since, "--api-key", KEY, "--json"]) == 1
    second = rows(capsys)
    assert {second[ids[k]]["status"] for k in ("phish", "legit")} == {"skipped"}
    assert second[ids["unlisted"]]["status"] == "added" and second[ids["old"]]["status"] == "added"
    assert second[ids["no-shot"]]["status"] == "error"  # not remembered: tried again
    fetched = [path for path in standin.requests if path.startswith("/bin/")]
    assert not any(ids["phish"] in path or ids["legit"] in path for path in fetched)  # not downloaded again
    assert any(path.startswith("/json/recent_captures/") for path in standin.requests)  # --since sent

    with Quaid.open(load_settings()) as quaid:  # a picture deleted since: imported again
        quaid.delete(second[ids["phish"]]["id"])
    assert main(["lookyloo-import", "--url", url, "--json"]) == 1
    assert rows(capsys)[ids["phish"]]["status"] == "added"


def test_an_entry_that_is_not_a_uuid_fails_alone_and_is_never_requested(local_store, capsys, lookyloo):
    standin, url, ids, _ = lookyloo
    standin.listed_extra.append("../../admin/x/remove")
    assert main(["lookyloo-import", "--url", url, "--json"]) == 1
    found = rows(capsys)
    assert found["../../admin/x/remove"]["status"] == "error" and found[ids["phish"]]["status"] == "added"
    assert not any("admin" in path for path in standin.requests)


def test_anonymous_callers_see_listed_captures_only_and_an_unknown_key_is_anonymous(local_store, capsys,
                                                                                   lookyloo):
    _, url, ids, _ = lookyloo
    assert main(["lookyloo-import", "--url", url, "--api-key", "not-a-key", "--json"]) == 1
    assert ids["unlisted"] not in rows(capsys)


def test_an_unreachable_or_stalled_instance_stops_with_one_line(local_store, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["lookyloo-import", "--url", f"http://127.0.0.1:{port}/", "--timeout", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no list of recent captures" in err[0]
    with socket.socket() as stalled:  # accepts connections, never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        url = f"http://127.0.0.1:{stalled.getsockname()[1]}/"
        assert main(["lookyloo-import", "--url", url, "--timeout", "0.3"]) == 2
    assert "timed out" in capsys.readouterr().err.lower()


def test_bad_arguments_stop_before_any_request(local_store, capsys):
    assert main(["lookyloo-import", "--url", "http://127.0.0.1:9/", "--since", "last tuesday"]) == 2
    assert main(["lookyloo-import", "--url", "http://127.0.0.1:9/", "--top", "0"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_since_is_utc_unless_an_offset_is_given_and_each_instance_has_its_own_ledger(tmp_path):
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00:00+01:00") == datetime(2026, 12, 1, 7, tzinfo=UTC)
    assert ledger_path(tmp_path, "http://a.test/") != ledger_path(tmp_path, "http://b.test/")


def test_through_a_running_service_the_same_import_and_skip(tmp_path, monkeypatch, capsys, lookyloo):
    """``--server``: pictures go to the service; a re-run asks it whether they are still stored."""
    from serverproc import ServerProcess

    _, url, ids, baseline = lookyloo
    monkeypatch.setenv("QUAID_HOME", str(tmp_path / "client-home"))  # where the import is remembered
    with ServerProcess(tmp_path / "service") as service:
        with QuaidClient(service.url) as client:
            client.add(baseline, name="acme", metadata={"brand": "Acme", "domain": "acme.example"})
            assert main(["lookyloo-import", "--url", url, "--server", service.url, "--json"]) == 1
            first = rows(capsys)
            assert first[ids["phish"]]["verdict"] == "phishing-suspected"
            assert client.get(first[ids["phish"]]["id"])["metadata"]["lookyloo_capture"] == ids["phish"]
            assert main(["lookyloo-import", "--url", url, "--server", service.url, "--json"]) == 1
            assert rows(capsys)[ids["phish"]]["status"] == "skipped"


def test_a_blank_capture_is_stored_as_noise_and_says_so(local_store, capsys):
    from PIL import Image

    standin = LookylooStandIn()
    blank = standin.capture("https://slow.test/", png(Image.new("RGB", (1280, 800), "white")))
    page = standin.capture("https://page.test/", png(site_page(24, heading="Page")))
    with running(standin) as url:
        assert main(["lookyloo-import", "--url", url, "--json"]) == 0
    found = rows(capsys)
    assert found[blank]["noise"]["reason"] == "low-information" and found[blank]["similar"] == []
    assert "noise" not in found[page]
    with Quaid.open(load_settings()) as quaid:
        assert quaid.get(found[blank]["id"]).noise["reason"] == "low-information"

    other = LookylooStandIn()
    other_blank = other.capture("https://slow2.test/", png(Image.new("RGB", (1024, 768), "white"), 1))
    with running(other) as url:
        assert main(["lookyloo-import", "--url", url]) == 0
    assert f"{other_blank}  slow2.test  [noise: " in capsys.readouterr().out
