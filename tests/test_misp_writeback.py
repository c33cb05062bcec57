"""The MISP write-back (``quaid misp-sync``) against a real quaid service and a MISP stand-in.

A MISP instance cannot run here; :mod:`misp_standin` answers the REST calls PyMISP makes with
MISP-shaped bodies (and refuses what MISP refuses: cross-event references, bad keys), and
records every write so the tests assert on what reached "MISP".
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys

import pytest
import requests
from drawing import drawn, variant
from misp_standin import MINE, PARTNER, MISPStandIn, running
from misp_support import ROOT, start_quaid, stop
from PIL import Image

from engine.cli import main as quaid
from engine.perception_phash import phash_dct_base64

sys.path.insert(0, str(ROOT / "misp_modules" / "writeback"))
from quaid_misp_sync.cli import main as standalone  # noqa: E402

pytestmark = pytest.mark.misp

ACCEPTED_TAGS = {'workflow:state="complete"', 'misp:automation-level="unsupervised"'}


@pytest.fixture(scope="module")
def quaid_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("quaid-home")
    process, url = start_quaid(home)
    yield url
    stop(process, home)


def build_misp(seed: int) -> tuple[MISPStandIn, dict]:
    """Four events: a bare screenshot, its re-encoded copy in an image object, an unrelated
    picture with a PDF, and an event outside the date range. Each test draws its own
    pictures (``seed``), as quaid keeps the pictures of earlier tests."""
    misp = MISPStandIn()
    e1 = misp.add_event("phishing kit A", date="2026-11-20", tags=("kit",))
    a1 = misp.add_attachment(e1, "screenshot.png", drawn(seed))
    e2 = misp.add_event("phishing kit B", date="2026-11-21")
    image = misp.add_image_object(e2)
    a2 = misp.add_attachment(e2, "login.jpg", variant(drawn(seed)), obj=image)
    a2["object_relation"] = "attachment"
    e3 = misp.add_event("unrelated", date="2026-11-21")
    a3 = misp.add_attachment(e3, "other.png", drawn(seed + 1))
    misp.add_attachment(e3, "report.pdf", b"%PDF-1.4 a report")
    e4 = misp.add_event("old", date="2025-01-01")
    return misp, {"e1": e1, "a1": a1, "e2": e2, "image": image, "a2": a2, "e3": e3, "a3": a3, "e4": e4}


def sync(url: str, quaid_url: str, *options: str, key: str = "misp-test-key") -> int:
    """``quaid misp-sync ...`` (the write-back mounted in quaid's command line)."""
    return quaid(["misp-sync", "--url", url, "--key", key, "--quaid", quaid_url, *options])


def tags(attribute: dict) -> set[str]:
    return {t["name"] for t in attribute["Tag"]}


def test_matches_are_recorded_once(quaid_url, capsys):
    misp, it = build_misp(21)
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
        first = list(misp.writes)
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
    assert misp.writes == first, "a second run must write nothing"
    summary = capsys.readouterr().out
    assert "references already present: 2" in summary and "pictures duplicate: 3" in summary

    # event 1: tags on the bare attachment, an image object describing it, a stand-in for e2's picture
    assert tags(it["a1"]) == ACCEPTED_TAGS
    wrapper = next(o for o in it["e1"]["Object"] if "picture of attachment" in o["comment"])
    proxy = next(o for o in it["e1"]["Object"] if it["a2"]["uuid"] in o["comment"])
    hashed = next(o for o in it["e1"]["Object"] if o["name"] == "cert-pl-phishing")
    assert len(it["e1"]["Object"]) == 3
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in wrapper["ObjectReference"]] == [
        (it["a1"]["uuid"], "describes"),
        (proxy["uuid"], "similar"),
    ]
    variant_id = hashlib.sha256(variant(drawn(21))).hexdigest()
    link = next(a for a in proxy["Attribute"] if a["object_relation"] == "link")
    assert link["value"] == f"{quaid_url}/#/picture/{variant_id}"
    assert "accepted" in link["comment"] and "votes" in link["comment"]
    assert all(a["disable_correlation"] for a in proxy["Attribute"])
    assert it["e2"]["uuid"] in proxy["comment"]
    # the picture's perception pHash where partners look for it: cert-pl-phishing's phash-dct-base64,
    # correlating, in the event's own distribution, describing the attachment
    [phash] = hashed["Attribute"]
    assert phash["object_relation"] == "phash-dct-base64" and phash["type"] == "text"
    assert phash["value"] == phash_dct_base64(Image.open(io.BytesIO(drawn(21))))
    assert not phash["disable_correlation"] and not phash["to_ids"] and hashed["distribution"] == "5"
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in hashed["ObjectReference"]] == [
        (it["a1"]["uuid"], "describes")]

    # event 2: the existing image object references a stand-in of e1's picture
    assert tags(it["a2"]) == ACCEPTED_TAGS
    [e2_proxy] = [o for o in it["e2"]["Object"] if o is not it["image"] and o["name"] == "image"]
    assert [o["name"] for o in it["e2"]["Object"]].count("cert-pl-phishing") == 1
    assert it["a1"]["uuid"] in e2_proxy["comment"]
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in it["image"]["ObjectReference"]] == [
        (e2_proxy["uuid"], "similar")
    ]

    # event 3 (unrelated picture, a PDF) and event 4 (not selected): untouched
    assert it["e3"]["Object"] == [] and tags(it["a3"]) == set()
    assert it["e4"]["Object"] == []
    assert {kind for kind, _ in first} == {"tag", "object", "reference"}


def test_a_brand_look_alike_on_other_domains_gets_the_phishing_tag(quaid_url, capsys):
    """The event's url/domain/hostname attributes go with the search: a picture looking like a brand
    baseline (stored in quaid) is tagged phishing:techniques="fake-website" unless every domain of
    its event is the brand's; a defanged URL quaid cannot read leaves the search without domains."""
    baseline = requests.post(f"{quaid_url}/api/v1/pictures", files={"file": ("bank.png", drawn(41))},
                             data={"brand": "Example Bank", "domain": "examplebank.test"},
                             headers={"X-Quaid-Request": "1"})
    assert baseline.status_code == 201, baseline.text
    misp = MISPStandIn()
    phish = misp.add_event("bank phish", date="2026-11-22")
    a_phish = misp.add_attachment(phish, "landing.png", variant(drawn(41)))
    url_object = misp.add_image_object(phish)  # where Lookyloo's export puts URLs: objects too
    misp.add_attribute(phish, "url", "https://examplebank.test/redirect?to=x", obj=url_object)
    misp.add_attribute(phish, "hostname", "examplebank-secure.test")
    own = misp.add_event("bank site", date="2026-11-22")
    a_own = misp.add_attachment(own, "home.png", variant(drawn(41), scale=0.9))
    misp.add_attribute(own, "url", "https://www.examplebank.test/")
    misp.add_attribute(own, "domain", "login.examplebank.test")
    defanged = misp.add_event("defanged", date="2026-11-22")
    a_defanged = misp.add_attachment(defanged, "x.png", variant(drawn(41), scale=0.8))
    misp.add_attribute(defanged, "url", "hxxps://examplebank[.]evil/")
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 0
        assert "pictures phishing-suspected: 1" in capsys.readouterr().out
        writes = len(misp.writes)
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 0
    assert 'phishing:techniques="fake-website"' in tags(a_phish)
    assert next(t for t in a_phish["Tag"] if "phishing" in t["name"])["local"]  # local unless --global-tags
    assert 'phishing:techniques="fake-website"' not in tags(a_own) | tags(a_defanged)
    assert tags(a_defanged) == ACCEPTED_TAGS  # its matches still recorded
    assert len(misp.writes) == writes  # the second run writes nothing again


def test_dry_run_writes_nothing_and_lists_every_write(quaid_url, capsys):
    misp, it = build_misp(31)
    with running(misp) as url:
        assert sync(url, quaid_url, "--event", it["e2"]["id"]) == 0  # registers e2's picture in quaid
        capsys.readouterr()
        before = len(misp.writes)
        assert sync(url, quaid_url, "--tag", "kit", "--dry-run") == 0
        out = capsys.readouterr().out
        assert len(misp.writes) == before, "a dry run sends nothing"
        planned = [line for line in out.splitlines() if line.startswith("  would write: ")]
        assert "dry run" in out and "tags added: 2" in out
        # e1's picture: its copy in e2, known from quaid's metadata and checked in MISP
        assert "references added: 1" in out and "stand-in image objects created: 1" in out
        assert sync(url, quaid_url, "--tag", "kit") == 0
    sent = misp.writes[before:]
    # 2 tags, wrapper + its reference, the hash object + its reference, proxy, reference
    assert len(planned) == len(sent) == 2 + 2 + 2 + 1 + 1
    assert sum("tag " in line for line in planned) == sum(kind == "tag" for kind, _ in sent) == 2


def test_single_event_selection(quaid_url):
    misp, it = build_misp(41)
    with running(misp) as url:  # the library's own entry point (python -m quaid_misp_sync)
        assert (
            standalone(["--url", url, "--key", misp.key, "--quaid", quaid_url, "--event", it["e3"]["id"]])
            == 0
        )
    assert misp.writes == []  # e3's picture matches nothing in another event


def test_wrong_misp_key_stops_with_exit_code_2(quaid_url, capsys):
    misp, _ = build_misp(51)
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", key="wrong") == 2
    assert "quaid misp-sync:" in capsys.readouterr().err
    assert misp.writes == []


def test_quaid_down_stops_with_exit_code_2(capsys):
    misp, _ = build_misp(61)
    with running(misp) as url:
        assert sync(url, "http://127.0.0.1:9", "--since", "2026-11-01") == 2
    assert "unreachable" in capsys.readouterr().err
    assert misp.writes == []


def test_a_selection_is_required(quaid_url, capsys):
    misp, _ = build_misp(71)
    with running(misp) as url:
        assert sync(url, quaid_url) == 2
    assert "select events" in capsys.readouterr().err


# -- what reaches whom: distribution, ownership, visibility (MISP 2.5.1 rules, see misp_standin) ------


def pair(misp: MISPStandIn, seed: int, first: dict, second: dict) -> tuple[dict, dict, dict, dict]:
    """Two events holding a picture and its re-encoded copy, as bare attachments."""
    e1 = misp.add_event("first", **first)
    a1 = misp.add_attachment(e1, "login.png", drawn(seed))
    e2 = misp.add_event("second", **second)
    a2 = misp.add_attachment(e2, "copy.jpg", variant(drawn(seed)))
    return e1, a1, e2, a2


def proxies(event: dict) -> list[dict]:
    return [o for o in event["Object"] if "same or nearly the same picture" in o["comment"]]


@pytest.mark.parametrize(
    "options, first, second, expected",
    [
        ((), 3, 3, "0"),  # default ceiling: your organisation only
        (("--distribution", "3"), 0, 3, "0"),  # an org-only event is never named wider
        (("--distribution", "3"), 2, 1, "1"),  # the narrower of the two events
        (("--distribution", "1"), 3, 3, "1"),  # the administrator's ceiling
    ],
)
def test_what_names_another_event_is_never_shared_wider_than_it(quaid_url, options, first, second, expected):
    misp = MISPStandIn()
    seed = 100 + 10 * first + second + 40 * len(options)
    e1, a1, e2, a2 = pair(misp, seed, {"distribution": first}, {"distribution": second})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", *options) == 0
    [in_e1], [in_e2] = proxies(e1), proxies(e2)
    assert a2["uuid"] in in_e1["comment"] and a1["uuid"] in in_e2["comment"]
    assert in_e1["distribution"] == in_e2["distribution"] == expected
    assert all(
        a["distribution"] == "5" for a in in_e1["Attribute"] + in_e2["Attribute"]
    )  # inherit the object
    assert all(a["to_ids"] is False for a in in_e1["Attribute"] + in_e2["Attribute"])


def test_links_use_the_public_url(quaid_url):
    misp = MISPStandIn()
    e1, _, e2, a2 = pair(misp, 231, {}, {})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--public-url", "https://quaid.example/") == 0
    [proxy] = proxies(e1)
    link = next(a["value"] for a in proxy["Attribute"] if a["object_relation"] == "link")
    assert link == f"https://quaid.example/#/picture/{hashlib.sha256(variant(drawn(231))).hexdigest()}"


def test_tag_only_names_nothing_of_the_other_event(quaid_url):
    misp = MISPStandIn()
    e1, a1, e2, a2 = pair(misp, 141, {}, {})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 0
    assert tags(a1) == tags(a2) == ACCEPTED_TAGS
    assert e1["Object"] == e2["Object"] == []
    assert {kind for kind, _ in misp.writes} == {"tag"}
    assert all(a2["uuid"] not in str(body) for _, body in misp.writes if body.get("uuid") == a1["uuid"])


def test_decision_tags_are_local_and_leave_a_published_event_published(quaid_url):
    misp = MISPStandIn()
    e1, a1, e2, a2 = pair(misp, 151, {"published": True}, {"published": True})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 0
    assert all(t["local"] for t in a1["Tag"] + a2["Tag"])
    assert e1["published"] and e2["published"]


def test_local_tags_need_the_host_organisation_and_global_tags_are_the_way_out(quaid_url, capsys):
    misp = MISPStandIn(host_org="9")  # the key's organisation is not the instance's host organisation
    e1, a1, e2, a2 = pair(misp, 221, {}, {})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 1
        err = capsys.readouterr().err
        assert "Local tags can only be added by users of the host organisation" in err
        assert "(run with --global-tags)" in err
        assert tags(a1) == tags(a2) == set()
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only", "--global-tags") == 0
    assert tags(a1) == tags(a2) == ACCEPTED_TAGS
    assert not any(t["local"] for t in a1["Tag"] + a2["Tag"])


def test_objects_unpublish_and_the_run_says_so_or_republishes(quaid_url, capsys):
    misp = MISPStandIn()
    e1, _, e2, _ = pair(misp, 161, {"published": True}, {})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
        assert not e1["published"], "MISP unpublishes an event when an object is added to it"
        assert "published events left unpublished by the writes: 1" in capsys.readouterr().out
        assert ("publish", {"event": e1["uuid"]}) not in misp.writes

    misp = MISPStandIn()
    e1, _, e2, _ = pair(misp, 171, {"published": True}, {})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--republish") == 0
    assert e1["published"] and not e2["published"]  # e2 was not published before the run
    assert [body for kind, body in misp.writes if kind == "publish"] == [{"event": e1["uuid"]}]
    assert "events published again: 1" in capsys.readouterr().out


def test_events_of_other_organisations_are_left_alone(quaid_url, capsys):
    misp = MISPStandIn(site_admin=True)  # MISP itself would let a site admin write anywhere
    mine, a_mine, pulled, a_pulled = pair(misp, 181, {}, {"orgc": PARTNER, "org": MINE})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
        assert "events of other organisations left alone: 1" in capsys.readouterr().out
        assert pulled["Object"] == [] and tags(a_pulled) == set()
        assert tags(a_mine) == ACCEPTED_TAGS and len(proxies(mine)) == 1
        assert sync(url, quaid_url, "--since", "2026-11-01", "--other-orgs") == 0
    assert tags(a_pulled) == ACCEPTED_TAGS and len(proxies(pulled)) == 1


def test_a_picture_in_an_event_the_key_cannot_see_is_never_named(quaid_url, capsys):
    misp = MISPStandIn()
    hidden = misp.add_event("partner, organisation only", distribution=0, orgc=PARTNER)
    secret = misp.add_attachment(hidden, "partner-secret.png", drawn(191))
    requests.post(  # registered in quaid by the partner's own run, with its MISP location
        f"{quaid_url}/api/v1/pictures",
        files={"file": ("partner-secret.png", drawn(191))},
        headers={"X-Quaid-Request": "1"},  # quaid refuses changes without the header
        data={
            "metadata": json.dumps({"misp_event_uuid": hidden["uuid"], "misp_attribute_uuid": secret["uuid"]})
        },
        timeout=30,
    ).raise_for_status()
    mine = misp.add_event("mine")
    misp.add_attachment(mine, "copy.jpg", variant(drawn(191)))
    with running(misp) as url:
        assert sync(url, quaid_url, "--event", mine["id"]) == 0
    assert mine["Object"] == [] and misp.writes == []
    assert "matches in events this key cannot see: 1" in capsys.readouterr().out


def test_a_changed_decision_replaces_the_old_decision_tags(quaid_url):
    misp = MISPStandIn()
    e1, a1, e2, a2 = pair(misp, 201, {}, {})
    a1["Tag"].append(misp._tag('workflow:todo="review"', local=True))
    a1["Tag"].append(misp._tag("tlp:amber"))
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--tag-only") == 0
    assert tags(a1) == ACCEPTED_TAGS | {"tlp:amber"}
    assert ("untag", {"uuid": a1["uuid"], "tag": 'workflow:todo="review"'}) in misp.writes


def test_events_are_read_page_by_page(quaid_url):
    misp = MISPStandIn(max_unpaged=3)
    for n in range(7):
        misp.add_attachment(misp.add_event(f"event {n}"), f"p{n}.png", drawn(210 + n))
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
    assert all(query.get("limit") for query in misp.searches)
    assert sorted(int(query["page"]) for query in misp.searches) == [1]  # 7 events fit one page of 20
    from pymisp import PyMISP
    from quaid_misp_sync.sync import Selection, select_events

    with running(misp) as url:
        events = select_events(PyMISP(url, misp.key), Selection(since="2026-11-01"), page_size=3)
    assert len(events) == 7 and [q["page"] for q in misp.searches[-3:]] == [1, 2, 3]


# -- the stand-in refuses what MISP 2.5.1 refuses --------------------------------------------------


def test_standin_enforces_misps_write_rules():
    from pymisp import MISPAttribute, MISPObject, PyMISP

    misp = MISPStandIn()
    partners = misp.add_event("partner's", orgc=PARTNER, distribution=1)
    theirs = misp.add_attachment(partners, "x.png", drawn(5))
    mine = misp.add_event("mine", published=True)
    with running(misp) as url:
        api = PyMISP(url, misp.key)
        obj = MISPObject("image")
        obj.add_attribute("link", value="https://example.test/")
        assert "errors" in api.add_object(partners["uuid"], obj)  # canModifyEvent: 403
        assert "errors" in api.tag(theirs["uuid"], "tlp:red")  # a global tag needs modify
        assert not api.tag(theirs["uuid"], "tlp:red", local=True).get("errors")  # a local one does not
        assert mine["published"]
        assert not api.add_object(mine["uuid"], obj).get("errors")
        assert not mine["published"], "ObjectsController::add unpublishes"
        # ObjectTemplate::checkTemplateConformity: requiredOneOf, and single relations once
        hashes = MISPObject("cert-pl-phishing", standalone=False)
        hashes.add_attribute("html-structure", value="div div p", type="text")
        hashes.attributes[0].object_relation = "comment-text"  # not in the template: no requiredOneOf
        assert "requires at least one" in str(api.add_object(mine["uuid"], hashes)["errors"])
        twice = MISPObject("cert-pl-phishing", standalone=False)
        twice.add_attribute("phash-dct-base64", value="sA0fSi03Wjs=")
        twice.add_attribute("phash-dct-base64", value="+EqdMpesFLU=")
        assert "multiple flag" in str(api.add_object(mine["uuid"], twice)["errors"])
        once = MISPObject("cert-pl-phishing", standalone=False)
        once.add_attribute("phash-dct-base64", value="sA0fSi03Wjs=")
        assert not api.add_object(mine["uuid"], once).get("errors")
        duplicate = MISPAttribute()
        duplicate.from_dict(type="text", value="again", uuid=theirs["uuid"])
        refused = api.add_attribute(mine["uuid"], duplicate)
        assert "The UUID provided is not unique" in str(refused)


def test_a_malware_sample_bomb_is_dropped_without_being_decompressed():
    """A malware-sample zip whose sample is 45 MiB that are not a picture (deflated to ~45 KiB):
    read chunk by chunk and dropped after the first (traced Python allocations stay small)."""
    import base64
    import io
    import tracemalloc
    import zipfile

    from misp_support import malware_sample_zip
    from pymisp import MISPAttribute
    from quaid_misp_sync.pictures import attachment_bytes

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0" * 32, bytes(45 << 20))
        archive.writestr("0" * 32 + ".filename.txt", "x.png")
    attribute, picture = MISPAttribute(), MISPAttribute()
    attribute.from_dict(
        type="malware-sample", value="x.png|0", data=base64.b64encode(bomb.getvalue()).decode()
    )
    sample = malware_sample_zip(drawn(7), "y.png")
    picture.from_dict(type="malware-sample", value="y.png|0", data=base64.b64encode(sample).decode())
    tracemalloc.start()
    try:
        assert attachment_bytes(attribute) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak >> 20} MiB traced"
    assert attachment_bytes(picture) == drawn(7)


@pytest.mark.parametrize(
    "ceiling, first, second, expected",
    [
        (3, {"distribution": "3"}, {"distribution": "2"}, (2, "0")),
        (1, {"distribution": "3"}, {"distribution": "2"}, (1, "0")),
        (
            3,
            {"distribution": "4", "sharing_group_id": "5"},
            {"distribution": "4", "sharing_group_id": "5"},
            (4, "5"),
        ),
        (
            0,
            {"distribution": "4", "sharing_group_id": "5"},
            {"distribution": "4", "sharing_group_id": "5"},
            (0, "0"),
        ),
        (
            3,
            {"distribution": "4", "sharing_group_id": "5"},
            {"distribution": "4", "sharing_group_id": "6"},
            (0, "0"),
        ),
        (3, {"distribution": "4", "sharing_group_id": "5"}, {"distribution": "1"}, (0, "0")),
    ],
)
def test_narrowest_sharing_of_two_events(ceiling, first, second, expected):
    """Sharing groups are not ordered against the levels: only the same group on both sides keeps it."""
    from quaid_misp_sync.policy import narrowest

    sharing = narrowest(ceiling, first, second)
    assert (sharing.distribution, sharing.sharing_group_id) == expected


def test_attach_diff_puts_the_drawing_in_each_stand_in_shared_as_the_object(quaid_url):
    misp = MISPStandIn()
    e1, a1, e2, a2 = pair(misp, 241, {"distribution": 2}, {"distribution": 1})
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", "--distribution", "3", "--attach-diff") == 0
    for event, own, other in ((e1, drawn(241), variant(drawn(241))), (e2, variant(drawn(241)), drawn(241))):
        [proxy] = proxies(event)
        [attachment] = [a for a in proxy["Attribute"] if a["object_relation"] == "attachment"]
        ids = [hashlib.sha256(data).hexdigest()[:12] for data in (own, other)]
        assert attachment["value"] == f"quaid-difference-{ids[0]}-{ids[1]}.png"
        assert proxy["distribution"] == "1" and attachment["distribution"] == "5"  # the narrower event's
        assert Image.open(io.BytesIO(base64.b64decode(attachment["data"]))).format == "PNG"
