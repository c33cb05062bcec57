"""quaid's misp-modules on a real misp-modules 3.x server, against a real quaid service.

MISP's side is reproduced at the HTTP boundary: the payloads POSTed to ``/query`` are the
ones MISP sends (misp_standard: ``attribute`` with base64 ``data``, or ``object`` with its
``Attribute`` list; the legacy ``{"attachment": name, "data": ...}``; import modules get
``data`` and ``config``), and the answers are loaded with PyMISP as MISP event content.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import json
import socket
import threading
import time
import uuid
import zipfile

import pytest
import requests
from drawing import drawn, variant
from misp_support import malware_sample_zip, start_misp_modules, start_quaid, stop
from PIL import Image
from pymisp import MISPEvent

from engine.perception_phash import phash_dct_base64

pytestmark = pytest.mark.misp

REFERENCES = {"login-bank.png": 11, "login-mail.png": 12, "shop-home.png": 13}
CONFIG_KEYS = ["url", "api_key", "timeout", "top", "register", "public_url"]


@pytest.fixture(scope="module")
def quaid_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("quaid-home")
    process, url = start_quaid(home)
    for name, seed in REFERENCES.items():
        answer = requests.post(
            f"{url}/api/v1/pictures", files={"file": (name, drawn(seed))}, data={"name": name},
            headers={"X-Quaid-Request": "1"},  # as quaid's clients send with every change
        )
        assert answer.status_code == 201, answer.text
    yield url
    stop(process, home)


@pytest.fixture(scope="module")
def modules_url(tmp_path_factory):
    process, url = start_misp_modules(tmp_path_factory.mktemp("misp-modules"))
    yield url
    stop(process)


def query(modules_url: str, payload: dict, timeout: float = 30) -> dict:
    answer = requests.post(f"{modules_url}/query", data=json.dumps(payload), timeout=timeout)
    assert answer.status_code == 200
    return answer.json()


def attachment(data: bytes, name: str = "screenshot.png", kind: str = "attachment") -> dict:
    value = f"{name}|{hashlib.md5(data).hexdigest()}" if kind == "malware-sample" else name  # noqa: S324
    payload = malware_sample_zip(data, name) if kind == "malware-sample" else data
    return {
        "id": "42",
        "event_id": "7",
        "object_id": "0",
        "uuid": str(uuid.uuid4()),
        "type": kind,
        "category": "Payload delivery" if kind == "malware-sample" else "External analysis",
        "value": value,
        "to_ids": kind == "malware-sample",
        "distribution": "5",
        "comment": "",
        "data": base64.b64encode(payload).decode(),
    }


def expansion(attribute: dict, config: dict, **extra) -> dict:
    return {"module": "quaid_similarity", "event_id": "7", "attribute": attribute, "config": config, **extra}


def as_event(results: dict) -> MISPEvent:
    """Load the answer as MISP does: an event's Attribute and Object lists (PyMISP raises if malformed)."""
    event = MISPEvent()
    event.load({"Event": {"info": "enrichment", **results}})
    return event


@pytest.fixture
def config(quaid_url):
    return {"url": quaid_url, "api_key": "", "timeout": "8", "top": "5", "register": ""}


def test_modules_are_listed_with_their_introspection(modules_url):
    listed = {m["name"]: m for m in requests.get(f"{modules_url}/modules", timeout=10).json()}
    similarity, importer = listed["quaid_similarity"], listed["quaid_import"]
    assert similarity["type"] == "expansion"
    assert similarity["mispattributes"]["format"] == "misp_standard"
    assert set(similarity["mispattributes"]["input"]) == {"attachment", "malware-sample", "image", "file",
                                                          "text", "cert-pl-phishing"}
    assert similarity["meta"]["config"] == CONFIG_KEYS
    assert importer["type"] == "import_mod"
    assert importer["mispattributes"]["inputSource"] == ["file"]
    assert "tags" in importer["mispattributes"]["userConfig"]
    assert importer["meta"]["config"] == CONFIG_KEYS
    assert len(listed) > 20  # the built-in modules still load next to ours (no name clash)


def test_attachment_variant_gives_accepted_image_object(modules_url, config, quaid_url):
    attribute = attachment(variant(drawn(11)), "copy.jpg")
    answer = query(modules_url, expansion(attribute, config))
    event = as_event(answer["results"])
    reference_id = hashlib.sha256(drawn(11)).hexdigest()
    [obj] = event.objects
    assert obj.name == "image"
    assert obj.get_attributes_by_relation("filename")[0].value == "login-bank.png"
    link = obj.get_attributes_by_relation("link")[0]
    assert link.value == f"{quaid_url}/#/picture/{reference_id}"
    picture = obj.get_attributes_by_relation("attachment")[0]
    assert picture.disable_correlation and obj.get_attributes_by_relation("filename")[0].disable_correlation
    shown = Image.open(picture.data)  # the stored picture or the service's thumbnail
    assert shown.format in ("PNG", "JPEG") and picture.value.startswith("login-bank.png")
    [reference] = obj.references
    assert (reference.referenced_uuid, reference.relationship_type) == (attribute["uuid"], "variant-of")
    assert "accepted" in obj.comment and "distance" in obj.comment and reference_id in obj.comment
    assert "votes: " in obj.comment and " yes " in obj.comment
    assert {t.name for t in link.tags} == {
        'workflow:state="complete"',
        'misp:automation-level="unsupervised"',
    }
    assert event.attributes == []  # the queried attribute is not echoed (MISP would refuse its uuid)
    assert all(a["to_ids"] is False for o in answer["results"]["Object"] for a in o["Attribute"])


def test_malware_sample_zip_is_opened(modules_url, config):
    attribute = attachment(variant(drawn(12), scale=0.9), "mail.png", kind="malware-sample")
    event = as_event(query(modules_url, expansion(attribute, config))["results"])
    assert [o.get_attributes_by_relation("filename")[0].value for o in event.objects] == ["login-mail.png"]


def test_image_object_attachment_is_referenced(modules_url, config):
    inner = attachment(variant(drawn(13)), "shop.jpg")
    inner["object_relation"] = "attachment"
    obj = {"name": "image", "uuid": str(uuid.uuid4()), "meta-category": "file", "Attribute": [inner]}
    payload = {"module": "quaid_similarity", "event_id": "7", "object": obj, "config": config}
    event = as_event(query(modules_url, payload)["results"])
    [match] = event.objects
    assert match.references[0].referenced_uuid == obj["uuid"]
    assert event.attributes == []  # an object input is not echoed as an attribute


def test_an_image_object_seen_outside_the_brands_domain_is_tagged_phishing(modules_url, config, quaid_url):
    """The object's own url attribute is the domain quaid judges; the brand's look elsewhere gets
    phishing:techniques="fake-website" (taxonomy phishing v5) and a comment naming the brand."""
    added = requests.post(f"{quaid_url}/api/v1/pictures", files={"file": ("bank-baseline.png", drawn(14))},
                          data={"name": "bank-baseline.png", "brand": "Example Bank",
                                "domain": "www.examplebank.test"}, headers={"X-Quaid-Request": "1"})
    assert added.status_code == 201, added.text

    def enrich(url: str) -> list:
        inner = attachment(variant(drawn(14)), "seen.jpg")
        inner["object_relation"] = "attachment"
        seen_at = {"type": "url", "object_relation": "url", "value": url, "uuid": str(uuid.uuid4())}
        obj = {"name": "image", "uuid": str(uuid.uuid4()), "meta-category": "file",
               "Attribute": [inner, seen_at]}
        payload = {"module": "quaid_similarity", "event_id": "7", "object": obj, "config": config}
        return as_event(query(modules_url, payload)["results"]).objects

    [phish] = enrich("https://examplebank.test.secure-login.test/signin")
    tags = {t.name for t in phish.get_attributes_by_relation("link")[0].tags}
    assert 'phishing:techniques="fake-website"' in tags and 'workflow:state="complete"' in tags
    assert "phishing suspected: looks like Example Bank's site" in phish.comment
    phash = hash_text(phash_dct_base64(Image.open(io.BytesIO(drawn(14)))))  # a partner's page: hash and URL
    seen_at = {"type": "url", "object_relation": "url", "value": "https://examplebank-verify.test/",
               "uuid": str(uuid.uuid4())}
    shared = {"name": "cert-pl-phishing", "uuid": str(uuid.uuid4()), "meta-category": "network",
              "Attribute": [phash, seen_at]}
    payload = {"module": "quaid_similarity", "event_id": "7", "object": shared, "config": config}
    found = as_event(query(modules_url, payload)["results"]).objects
    [by_hash] = [o for o in found if "Example Bank" in o.comment]
    hash_tags = {t.name for t in by_hash.get_attributes_by_relation("link")[0].tags}
    assert 'phishing:techniques="fake-website"' in hash_tags and 'workflow:todo="review"' in hash_tags
    [own] = enrich("https://online.examplebank.test/")
    own_tags = {t.name for t in own.get_attributes_by_relation("link")[0].tags}
    assert 'phishing:techniques="fake-website"' not in own_tags
    assert "Example Bank's own site (examplebank.test)" in own.comment


def test_legacy_payload_is_read(modules_url, config):
    data = variant(drawn(11))
    payload = {
        "module": "quaid_similarity",
        "attachment": "x.jpg",
        "data": base64.b64encode(data).decode(),
        "config": config,
    }
    event = as_event(query(modules_url, payload)["results"])
    assert [o.name for o in event.objects] == ["image"]
    assert event.objects[0].references == []  # no uuid to reference in the legacy format


def test_unrelated_picture_answers_nothing_found(modules_url, config):
    answer = query(modules_url, expansion(attachment(drawn(99), "fresh.png"), config))
    assert answer == {"error": "quaid: no known picture is the same or nearly the same as fresh.png"}


def test_register_adds_the_picture_with_misp_metadata(modules_url, config, quaid_url):
    data = drawn(71)
    attribute = attachment(data, "new.png")
    answer = query(modules_url, expansion(attribute, {**config, "register": "1"}))
    assert answer["error"].endswith("(registered in quaid)")
    record = requests.get(
        f"{quaid_url}/api/v1/pictures/{hashlib.sha256(data).hexdigest()}", timeout=10
    ).json()
    assert record["metadata"] == {"misp_event_id": "7", "misp_attribute_uuid": attribute["uuid"]}
    again = query(modules_url, expansion(attachment(variant(data)), config))
    assert len(as_event(again["results"]).objects) == 1


def hash_text(value: str, relation: str | None = "phash-dct-base64") -> dict:
    """A text attribute as MISP sends one that sits in a cert-pl-phishing object."""
    attribute = {"id": "43", "event_id": "7", "object_id": "9", "uuid": str(uuid.uuid4()), "type": "text",
                 "category": "Other", "value": value, "to_ids": False, "distribution": "5", "comment": ""}
    if relation:
        attribute["object_relation"] = relation
    return attribute


def test_a_partners_phash_finds_the_picture_for_review_only(modules_url, config, quaid_url):
    """cert-pl-phishing's phash-dct-base64 (perception's pHash) of a copy: the match is to review,
    never accepted, since a hash cannot tell template siblings apart."""
    value = phash_dct_base64(Image.open(io.BytesIO(variant(drawn(12)))))
    attribute = hash_text(value)
    event = as_event(query(modules_url, expansion(attribute, config))["results"])
    first = event.objects[0]
    assert first.get_attributes_by_relation("filename")[0].value == "login-mail.png"
    assert first.references[0].referenced_uuid == attribute["uuid"]
    assert first.references[0].relationship_type == "similar" and "hashes-only" in first.comment
    assert {t.name for t in first.get_attributes_by_relation("link")[0].tags} == {'workflow:todo="review"'}


def test_a_cert_pl_phishing_object_and_a_bare_pdq_are_read(modules_url, config, quaid_url):
    inner = hash_text(phash_dct_base64(Image.open(io.BytesIO(drawn(13)))))
    obj = {"name": "cert-pl-phishing", "uuid": str(uuid.uuid4()), "meta-category": "network",
           "Attribute": [inner]}
    payload = {"module": "quaid_similarity", "event_id": "7", "object": obj, "config": config}
    event = as_event(query(modules_url, payload)["results"])
    assert event.objects[0].get_attributes_by_relation("filename")[0].value == "shop-home.png"
    assert event.objects[0].references[0].referenced_uuid == obj["uuid"]
    pdq = requests.post(f"{quaid_url}/api/v1/hash", files={"file": ("x.png", drawn(11))},
                        headers={"X-Quaid-Request": "1"}).json()["hashes"]["pdq"]
    event = as_event(query(modules_url, expansion(hash_text(pdq, relation=None), config))["results"])
    assert event.objects[0].get_attributes_by_relation("filename")[0].value == "login-bank.png"
    assert "not a picture hash" in query(modules_url, expansion(hash_text("hello", None), config))["error"]
    obj["Attribute"] = []
    assert "no phash-dct-base64" in query(modules_url, payload)["error"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda a: a.update(data=base64.b64encode(b"%PDF-1.4 not a picture").decode()), "not a picture"),
        (lambda a: a.update(data="***not base64***"), "base64"),
        (lambda a: a.pop("data"), "no picture data"),
        (lambda a: a.update(type="ip-src"), "unsupported attribute type"),
        (lambda a: a.update(type="malware-sample"), "password 'infected'"),
    ],
)
def test_bad_inputs_answer_an_error(modules_url, config, change, expected):
    attribute = attachment(drawn(11))
    change(attribute)
    answer = query(modules_url, expansion(attribute, config))
    assert expected in answer["error"]


def test_bad_payloads_answer_an_error(modules_url, config):
    assert "bad payload" in query(modules_url, {"module": "quaid_similarity", "config": config})["error"]
    bad_config = {**config, "url": "ftp://example"}
    assert "http://" in query(modules_url, expansion(attachment(drawn(11)), bad_config))["error"]
    bad_object = {"name": "domain-ip", "uuid": str(uuid.uuid4()), "Attribute": []}
    payload = {"module": "quaid_similarity", "object": bad_object, "config": config}
    assert "unsupported object" in query(modules_url, payload)["error"]


def test_service_down_answers_an_error(modules_url, config):
    down = {**config, "url": f"http://127.0.0.1:{_closed_port()}"}
    assert "unreachable" in query(modules_url, expansion(attachment(drawn(11)), down))["error"]


def test_silent_service_times_out_within_the_configured_timeout(modules_url, config):
    with _silent_server() as url:
        started = time.monotonic()
        answer = query(
            modules_url, expansion(attachment(drawn(11)), {**config, "url": url, "timeout": "1.5"})
        )
        elapsed = time.monotonic() - started
    assert "did not answer" in answer["error"]
    assert 1.4 < elapsed < 5


def test_concurrent_queries_each_get_their_answer(modules_url, config):
    seeds = [11, 12, 13, 11, 12, 13]
    names = {v: k for k, v in REFERENCES.items()}

    def ask(seed):
        event = as_event(query(modules_url, expansion(attachment(variant(drawn(seed))), config))["results"])
        return event.objects[0].get_attributes_by_relation("filename")[0].value

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(ask, seeds)) == [names[s] for s in seeds]


def test_screenshot_answered_well_within_misps_limit(modules_url, config):
    data = variant(drawn(11, size=(1280, 800)), scale=1.0, quality=85)
    started = time.monotonic()
    answer = query(modules_url, expansion(attachment(data, "shot.jpg"), config))
    elapsed = time.monotonic() - started
    assert "results" in answer or "no known picture" in answer["error"], answer  # searched, not failed
    assert elapsed < 5.0, f"{elapsed:.2f} s; MISP allows 10 s"


def test_import_registers_a_picture_with_tags(modules_url, config, quaid_url):
    data = drawn(81)
    payload = {
        "module": "quaid_import",
        "event_id": "9",
        "filename": "brand.png",
        "data": base64.b64encode(data).decode(),
        "config": {**config, "tags": "brand:example, genuine"},
    }
    event = as_event(query(modules_url, payload)["results"])
    [obj] = event.objects
    assert obj.get_attributes_by_relation("attachment")[0].data.getvalue() == data
    record = requests.get(
        f"{quaid_url}/api/v1/pictures/{hashlib.sha256(data).hexdigest()}", timeout=10
    ).json()
    assert set(record["tags"]) == {"brand:example", "genuine"}


def test_import_zip_returns_pictures_and_matches(modules_url, config):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("kit/copy-of-shop.jpg", variant(drawn(13)))
        zf.writestr("kit/fresh.png", drawn(91))
    payload = {
        "module": "quaid_import",
        "data": base64.b64encode(archive.getvalue()).decode(),
        "config": config,
    }
    event = as_event(query(modules_url, payload)["results"])
    uploaded = [o for o in event.objects if o.get_attributes_by_relation("attachment") and not o.references]
    matches = [o for o in event.objects if o.references]
    assert sorted(o.get_attributes_by_relation("filename")[0].value for o in uploaded) == [
        "copy-of-shop.jpg",
        "fresh.png",
    ]
    [match] = matches
    assert match.get_attributes_by_relation("filename")[0].value == "shop-home.png"
    shop_object = next(
        o for o in uploaded if o.get_attributes_by_relation("filename")[0].value == "copy-of-shop.jpg"
    )
    assert match.references[0].referenced_uuid == shop_object.uuid


def test_import_of_a_non_picture_answers_an_error(modules_url, config):
    payload = {"module": "quaid_import", "data": base64.b64encode(b"just text").decode(), "config": config}
    assert "not a picture" in query(modules_url, payload)["error"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _silent_server:
    """Accepts connections and never answers: a hung quaid service."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        try:
            while True:
                self.held.append(self.sock.accept()[0])
        except OSError:
            return

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_links_use_the_public_url_not_the_api_url(modules_url, config):
    public = "https://quaid.analysts.example"
    settings = {**config, "public_url": public + "/"}
    answer = query(modules_url, expansion(attachment(variant(drawn(12))), settings))
    [obj] = as_event(answer["results"]).objects
    link = obj.get_attributes_by_relation("link")[0].value
    assert link == f"{public}/#/picture/{hashlib.sha256(drawn(12)).hexdigest()}"
    settings = {**config, "public_url": "javascript:alert(1)"}
    bad = query(modules_url, expansion(attachment(drawn(12)), settings))
    assert "public_url must start with http:// or https://" in bad["error"]
