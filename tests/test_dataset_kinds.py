"""The evaluation set's kinds, on a tiny set rendered in the test by real Chromium.

Each kind is produced, labelled, and is what it claims: a HiDPI copy has
twice the pixels, a full-page capture is taller than the window, the
consent dialog dims the page, a template sibling differs from its stored
page in few but some pixels. Sites: Python's library reference and git's man
pages (Debian packages), and the stisla admin template from npm
(scripts/install-web-templates.sh).
"""

from __future__ import annotations

import io
import random
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from engine.evaluation import sources
from engine.evaluation.dataset import DUPLICATE_SHARE, Size, _page_negative, build_dataset
from engine.evaluation.manifest import read_manifest
from engine.evaluation.modifications import DESKTOP, desktop_screenshot
from engine.evaluation.plan import Pick, allocate, plan_pages
from engine.evaluation.thumbs import StoredThumbs

# The template gets a documentation site's weight, so that a tiny set has some of its pages.
SITES = tuple(replace(s, weight=0.2) if s.app else s for s in sources.SITES
              if s.name in ("python", "git", "app-stisla"))
SIZE = Size(pages=3, page_negatives=3, photos=0, photo_negatives=0, siblings=1, sibling_references=1,
            synthetic_siblings=1, distractors=3, full_page_references=1)
NEW_KINDS = {"window-width", "consent-modal", "full-page", "hidpi", "desktop", "mobile-render",
             "viewport-of-full-page"}


@pytest.fixture(scope="module")
def kinds_set(tmp_path_factory):
    assert sources.site_pages(SITES[2]), "run scripts/install-web-templates.sh (the stisla template)"
    folder = tmp_path_factory.mktemp("kinds-set")
    build_dataset(folder, SIZE, seed=3, progress=False, sites=SITES)
    entries = read_manifest(folder)
    return folder, entries, {e.id: e for e in entries}


def picture(folder, entry) -> Image.Image:
    with Image.open(folder / entry.path) as image:
        return image.convert("RGB")


def changed_share(a: Image.Image, b: Image.Image) -> float:
    grey = [np.asarray(i.convert("L").resize((640, 400)), dtype=np.int16) for i in (a, b)]
    return float(np.mean(np.abs(grey[0] - grey[1]) > 24))


def variants_of(entries, kind):
    return [e for e in entries if e.role == "variant" and e.kind == kind]


def test_every_kind_is_made_and_labelled(kinds_set):
    folder, entries, by_id = kinds_set
    assert NEW_KINDS <= {e.kind for e in entries if e.role == "variant"}
    assert {"sibling", "sibling-synthetic", "unseen-page", "unseen-app-page"} <= {
        e.kind for e in entries if e.role == "negative"}
    distractors = [e for e in entries if e.role == "distractor"]
    assert distractors and all(e.reference is None and e.kind == "distractor" for e in distractors)
    assert not {e.reference for e in entries if e.role == "variant"} & {e.id for e in distractors}
    assert all(e.site for e in entries)
    for entry in entries:
        if entry.role == "variant":
            assert by_id[entry.reference].role == "reference"
        assert (folder / entry.path).is_file()


def test_hidpi_is_twice_the_reference(kinds_set):
    folder, entries, by_id = kinds_set
    for variant in variants_of(entries, "hidpi"):
        reference = picture(folder, by_id[variant.reference])
        assert picture(folder, variant).size == (reference.width * 2, reference.height * 2)


def test_full_page_is_taller_than_the_window_in_both_directions(kinds_set):
    folder, entries, by_id = kinds_set
    for variant in variants_of(entries, "full-page"):
        full, reference = picture(folder, variant), picture(folder, by_id[variant.reference])
        assert full.width == reference.width and full.height > reference.height
        top = full.crop((0, 0, reference.width, reference.height))
        assert changed_share(top, reference) < 0.05  # the window is the top of the whole page
    (viewport,) = variants_of(entries, "viewport-of-full-page")
    stored = by_id[viewport.reference]
    assert stored.params["capture"] == "full-page"
    assert picture(folder, stored).height > picture(folder, viewport).height == 800


def test_the_consent_dialog_dims_the_page(kinds_set):
    folder, entries, by_id = kinds_set
    for variant in variants_of(entries, "consent-modal"):
        modal = np.asarray(picture(folder, variant).convert("L"), dtype=float)
        page = np.asarray(picture(folder, by_id[variant.reference]).convert("L"), dtype=float)
        edge = np.s_[:, :120]  # left strip: outside the centred dialog
        expected = 1 - variant.params["dim"]
        assert modal[edge].mean() == pytest.approx(page[edge].mean() * expected, rel=0.1, abs=4)
        assert modal[edge].mean() < page[edge].mean()


def test_siblings_differ_from_their_stored_page_in_few_but_some_pixels(kinds_set):
    folder, entries, by_id = kinds_set
    other_site = {e.site: e for e in entries if e.role == "reference"}
    for negative in (e for e in entries if e.kind in ("sibling", "sibling-synthetic")):
        sibling = by_id[negative.params["sibling_of"]]
        assert sibling.role == "reference" and sibling.site == negative.site
        ours, theirs = picture(folder, negative), picture(folder, sibling)
        share = changed_share(ours, theirs)
        assert share > DUPLICATE_SHARE
        unrelated = next(r for s, r in other_site.items() if s != negative.site)
        assert share < changed_share(ours, picture(folder, unrelated))
    (synthetic,) = [e for e in entries if e.kind == "sibling-synthetic"]
    assert synthetic.source == by_id[synthetic.params["sibling_of"]].source != synthetic.params["donor"]
    pairs = [e for e in entries if e.role == "reference" and "sibling_of" in e.params]
    assert len(pairs) == 2 and {by_id[e.params["sibling_of"]].id for e in pairs} == {e.id for e in pairs}


def test_desktop_window_width_and_mobile_have_their_sizes(kinds_set):
    folder, entries, by_id = kinds_set
    for variant in variants_of(entries, "desktop"):
        image = picture(folder, variant)
        assert image.width in (1024, 1280) and image.height == round(1080 * image.width / 1920)
        taskbar = np.asarray(image.convert("L"))[-8:, image.width // 2:]
        assert taskbar.mean() < 60
    for variant in variants_of(entries, "window-width"):
        assert 1024 <= picture(folder, variant).width <= 1920 and picture(folder, variant).height == 800
    for variant in variants_of(entries, "mobile-render"):
        image = picture(folder, variant)
        assert image.width == 585 and image.height > 2 * image.width  # 390 x 844 CSS px, scale 3, halved


def test_missing_images_change_the_page(kinds_set):
    folder, entries, by_id = kinds_set
    broken = variants_of(entries, "images-missing")
    assert broken  # the stisla pages and Python's header have pictures
    for variant in broken:
        assert changed_share(picture(folder, variant), picture(folder, by_id[variant.reference])) > 0


def test_web_application_pages_are_references_and_negatives(kinds_set):
    _, entries, _ = kinds_set
    apps = [e for e in entries if e.site == "app-stisla" and e.role in ("reference", "negative")]
    assert {"reference", "negative"} <= {e.role for e in apps}
    assert any("auth" in e.source or "login" in e.source for e in apps)
    assert all(e.kind == "unseen-app-page" for e in apps if e.role == "negative")


class _OneScreenshot:
    """A renderer that shows one fixed picture (to test the labelling rules without a browser)."""

    def __init__(self, image: Image.Image) -> None:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        self._png = buffer.getvalue()

    def load(self, path, width, height) -> None:
        pass

    def screenshot_png(self) -> bytes:
        return self._png


def text_page(changed_words: int) -> Image.Image:
    page = Image.new("RGB", (1280, 800), "white")
    for y in range(40, 760, 24):
        page.paste((30, 30, 30), (80, y, 1200, y + 10))
    for word in range(changed_words):
        page.paste((255, 255, 255), (80 + word * 90, 400, 150 + word * 90, 410))
    return page


def test_a_near_identical_negative_is_kept_and_labelled_only_a_duplicate_is_dropped(tmp_path):
    (tmp_path / "negatives").mkdir()
    stored = StoredThumbs()
    site = sources.SITES[0]
    stored.add(site.name, "docs-0000", text_page(0))
    pick = Pick("docs-s0000", site, site.root / "x.html", "negative", "sibling", sibling_of="docs-0000")
    near = _page_negative(_OneScreenshot(text_page(3)), tmp_path, pick, 1, stored)
    assert len(near) == 1 and near[0].kind == "sibling"
    assert DUPLICATE_SHARE < near[0].params["changed_share"] < 0.015  # was dropped as "ambiguous" before
    assert near[0].params["sibling_share"] == near[0].params["changed_share"]
    assert _page_negative(_OneScreenshot(text_page(0)), tmp_path, pick, 1, stored) == []


def test_desktop_screenshot_holds_the_page_scaled_down():
    page = Image.new("RGB", (1920, DESKTOP[1] - 124), "white")
    for x in range(0, 1920, 240):
        page.paste((20, 60, 160), (x, 100, x + 120, 700))
    image, params = desktop_screenshot(page, random.Random(4), maximised=True)
    assert params["x"] == params["y"] == 0 and image.width == params["width"]
    scale = image.width / DESKTOP[0]
    inside = image.crop((0, round(84 * scale) + 2, image.width, round((84 + page.height) * scale) - 2))
    assert changed_share(inside, page) < 0.1


def test_allocate_spreads_by_weight_within_capacity():
    assert allocate(10, {"a": 3, "b": 1}, {"a": 100, "b": 100}) in ({"a": 8, "b": 2}, {"a": 7, "b": 3})
    assert allocate(10, {"a": 3, "b": 1}, {"a": 2, "b": 100}) == {"a": 2, "b": 8}
    assert allocate(10, {"a": 1, "b": 1}, {"a": 2, "b": 3}) == {"a": 2, "b": 3}


def test_plan_roles_are_disjoint_and_siblings_point_at_stored_pages():
    size = Size(pages=6, page_negatives=6, photos=0, photo_negatives=0, siblings=4, sibling_references=2,
                synthetic_siblings=2, distractors=10, full_page_references=1)
    plan = plan_pages(size, 5, SITES)
    pages = [p.page for p in plan.references + plan.negatives + plan.distractors]
    assert len(pages) == len(set(pages))
    ids = {p.id for p in plan.references}
    siblings = [p for p in plan.negatives if p.kind == "sibling"]
    assert len(siblings) == 4 and all(p.sibling_of in ids for p in siblings)
    assert sum(p.synthetic_sibling for p in plan.references) == 2
    assert sum(p.full_page for p in plan.references) == 1
    assert len(plan.distractors) == 10 and plan_pages(size, 5, SITES) == plan


SMALL_SITES = tuple(s for s in SITES if s.name in ("python", "git"))
ONE_EACH = Size(pages=2, page_negatives=1, photos=0, photo_negatives=0, distractors=2)


def test_an_interrupted_build_resumes_without_rendering_again(tmp_path, monkeypatch):
    from engine.evaluation import dataset

    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(dataset, "_distractor", interrupted)
        with pytest.raises(KeyboardInterrupt):
            build_dataset(tmp_path, ONE_EACH, seed=2, progress=False, sites=SMALL_SITES)
    assert not (tmp_path / "manifest.jsonl").exists()
    references = sorted(p.name for p in (tmp_path / "references").iterdir())
    assert len(references) == 2

    def rendered_again(*args):
        raise AssertionError("a finished reference was rendered again")

    monkeypatch.setattr(dataset, "_page_reference", rendered_again)
    entries = build_dataset(tmp_path, ONE_EACH, seed=2, progress=False, sites=SMALL_SITES)
    assert sorted(e.path.split("/")[1] for e in entries if e.role == "reference") == references
    assert {e.role for e in entries} == {"reference", "variant", "negative", "distractor"}
    assert not (tmp_path / "progress").exists()


def test_a_resumed_build_with_other_options_is_refused(tmp_path):
    from engine.errors import BadInput
    from engine.evaluation import journal

    journal.check_plan(tmp_path, {"seed": 1})
    journal.record(tmp_path, "git", "git-0000", [])
    with (tmp_path / journal.FOLDER / "git.jsonl").open("a") as lines:
        lines.write('{"pick": "git-00')  # a line cut short by an interruption
    assert journal.done(tmp_path) == {"git-0000": []}
    with pytest.raises(BadInput, match="another size, seed or sites"):
        journal.check_plan(tmp_path, {"seed": 2})


def test_two_workers_make_the_same_set_as_one(tmp_path):
    one = build_dataset(tmp_path / "one", ONE_EACH, seed=2, progress=False, sites=SMALL_SITES)
    two = build_dataset(tmp_path / "two", ONE_EACH, seed=2, progress=False, sites=SMALL_SITES, workers=2)
    assert [(e.id, e.kind, e.source) for e in one] == [(e.id, e.kind, e.source) for e in two]
    assert len({e.site for e in two}) == 2


def test_rendering_stays_offline(tmp_path):
    """A page that hot-links a picture from a live local web server: the browser never asks for it."""
    import http.server
    import threading

    from engine.evaluation.render import open_renderer

    asked: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        page = tmp_path / "page.html"
        page.write_text(f'<html><head><link rel="stylesheet" href="{url}/style.css"></head><body>'
                        f'<h1>Sign in</h1><img src="{url}/logo.png" alt="logo" width="120" height="60">'
                        f'<script src="{url}/app.js"></script></body></html>')
        with open_renderer() as renderer:
            renderer.load(page, 640, 400)
            assert renderer.screenshot().size == (640, 400)
            renderer.mobile_png(page)
    finally:
        server.shutdown()
    assert asked == []


def test_a_synthetic_sibling_that_shows_no_change_is_left_out():
    from engine.evaluation.dataset import _unchanged_sibling
    from engine.evaluation.manifest import Entry

    def synthetic(share: float) -> Entry:
        return Entry("x--sibling-synthetic", "negatives/x.png", "negative", None, "sibling-synthetic",
                     "x.html", "sqlalchemy", 1, {"changed_share": share, "sibling_of": "x"})

    assert _unchanged_sibling(synthetic(0.0))  # the replaced title was out of sight: the page itself
    assert not _unchanged_sibling(synthetic(0.03))
