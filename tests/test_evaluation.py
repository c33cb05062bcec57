"""Evaluation end to end on a tiny generated set (real Chromium, real Redis), and the metrics' arithmetic.

The set is built in the test from two documentation sites and the wallpapers
(engine/evaluation/sources.py), so nothing large is committed.
"""

from __future__ import annotations

import base64
import json
import random

import numpy as np
import pytest
from PIL import Image

from engine.config import load_settings
from engine.evaluation import metrics, render, sources
from engine.evaluation.calibrate import calibrate, calibrated_dict
from engine.evaluation.dataset import Size, build_dataset
from engine.evaluation.evaluate import evaluate
from engine.evaluation.manifest import read_manifest
from engine.evaluation.modifications import PHOTO_MODIFICATIONS, SCREENSHOT_MODIFICATIONS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SITES = tuple(s for s in sources.SITES if s.name in ("python", "git"))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-set")
    build_dataset(folder, Size(pages=2, page_negatives=1, photos=1, photo_negatives=1), seed=7,
                  progress=False, sites=SITES)
    return folder


@pytest.fixture(scope="module")
def report(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-report")
    settings = load_settings(home=str(tmp_path_factory.mktemp("home")))
    return evaluate(tiny_set, settings, out, progress=False), out


def test_manifest_is_consistent_and_negatives_are_unseen(tiny_set):
    entries = read_manifest(tiny_set)
    refs = {e.id: e for e in entries if e.role == "reference"}
    assert len(refs) >= 3  # two sites' pages and a photo
    for entry in entries:
        with Image.open(tiny_set / entry.path) as image:
            assert image.width > 100 and image.height > 100
        if entry.role == "variant":
            assert entry.reference in refs and entry.source == refs[entry.reference].source
    page_refs = [r for r in refs.values() if r.site != "photos"]
    for ref in page_refs:
        kinds = {e.kind for e in entries if e.reference == ref.id and e.role == "variant"}
        assert set(SCREENSHOT_MODIFICATIONS) | {"window-size", "banner"} <= kinds
    negatives = [e for e in entries if e.role == "negative"]
    assert negatives and not {e.source for e in negatives} & {r.source for r in refs.values()}
    assert {e.site for e in negatives} <= {r.site for r in refs.values()}


def test_browser_rerenders_differ_from_the_reference(tiny_set):
    entries = read_manifest(tiny_set)
    for entry in entries:
        if entry.kind in ("banner", "heading", "scroll"):
            ref = next(e for e in entries if e.id == entry.reference)
            a = np.asarray(Image.open(tiny_set / ref.path).convert("L"), dtype=np.int16)
            b = np.asarray(Image.open(tiny_set / entry.path).convert("L"), dtype=np.int16)
            assert a.shape == b.shape and np.mean(a != b) > 0.0005, entry.id


@pytest.mark.parametrize("kind", sorted(set(SCREENSHOT_MODIFICATIONS) | set(PHOTO_MODIFICATIONS)))
def test_modifications_are_reproducible_from_their_seed(kind):
    modify = {**SCREENSHOT_MODIFICATIONS, **PHOTO_MODIFICATIONS}[kind]
    ramp = Image.linear_gradient("L").resize((320, 200))
    base = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize((320, 200)),
                               Image.new("L", (320, 200), 90)))
    first, params = modify(base, random.Random("seed:1"))
    again, params_again = modify(base, random.Random("seed:1"))
    assert params == params_again and first.tobytes() == again.tobytes()
    assert kind == "recompress" or first.tobytes() != base.tobytes()


def test_evaluate_reports_every_method_and_kind(report):
    data, out = report
    assert set(data["peers"]) == {"peer-phash", "peer-dhash", "peer-pdq", "peer-goldberg"}
    apart = sum(data["merged"]["kinds"][k]["count"] for k in data["merged"]["apart"])  # the mobile render
    assert data["merged"]["overall"]["count"] + apart == data["dataset"]["variants"]
    assert data["merged"]["negatives"]["count"] == data["dataset"]["negatives"]
    assert {"crop", "recompress", "mirror", "window-size"} <= set(data["merged"]["kinds"])
    for method in [*data["algorithms"].values(), *data["peers"].values()]:
        assert 0.0 <= method["overall"]["auto_accepted"] <= method["overall"]["found"] <= 1.0
        assert set(method["recall_at_precision"]) == {"0.999", "0.9999"}
    # an unmodified-looking copy (colour change, recompression) is found by quaid's merged decision
    easy = [data["merged"]["kinds"][k]["found"] for k in ("recompress", "colour")]
    assert min(easy) > 0.5
    assert json.loads((out / "report.json").read_text())["dataset"] == data["dataset"]
    assert "| kind |" in (out / "report.md").read_text()


def test_plots_are_png_files(report):
    _data, out = report
    plots = sorted(out.glob("*.png"))
    assert out / "precision-recall.png" in plots and any(p.name.startswith("hist-peer-pdq") for p in plots)
    for path in plots:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_calibrate_writes_settings_that_load(tiny_set, tmp_path, monkeypatch, report):
    best, tried, thresholds, _figures = calibrate(tiny_set, load_settings(), progress=False)
    assert len(tried) > 10 and set(thresholds) <= set(best.settings.algorithms)
    path = tmp_path / "calibrated.json"
    path.write_text(json.dumps(calibrated_dict(best.settings)))
    monkeypatch.setenv("QUAID_CONFIG", str(path))
    loaded = load_settings()
    assert loaded.decision_merge == best.settings.decision_merge
    for name in thresholds:
        conf, chosen = loaded.algorithm(name), best.settings.algorithms[name]
        assert 0.0 <= conf.yes <= conf.maybe <= 1.0
        assert (conf.yes, conf.maybe, conf.weight) == (chosen.yes, chosen.maybe, chosen.weight)


def test_nearest_and_flags_on_a_known_matrix():
    # 3 queries x 2 references: copy of ref 0 (right), copy of ref 1 (nearest is ref 0: wrong), a negative
    matrix = np.array([[0.05, 0.60], [0.10, 0.30], [0.20, 0.50]])
    truth = np.array([0, 1, -1])
    nearest = metrics.Nearest.from_matrix(matrix, truth)
    assert nearest.right.tolist() == [True, False, False]
    assert nearest.wrong.tolist() == [0.60, 0.10, 0.20]
    flags = metrics.flags_at(nearest, yes=0.15, maybe=0.35)
    assert flags.accepted_right.tolist() == [True, False, False]
    assert flags.wrong_accept.tolist() == [False, True, False]
    assert flags.found.tolist() == [True, True, False]
    assert flags.to_review.tolist() == [False, False, True]
    roles = np.array(["variant", "variant", "negative"])
    summary = metrics.summarise(flags, roles, np.array(["crop", "scroll", "unseen-page"]))
    assert summary["overall"]["auto_accepted"] == 0.5 and summary["negatives"]["to_review"] == 1.0
    budget = metrics.best_accept_at_budget(nearest, roles, budget=0.0)
    assert budget["threshold"] < 0.20 and budget["false_accepts"] == 0.0


def test_recall_at_precision_picks_the_largest_safe_threshold():
    positives = np.array([0.1, 0.2, 0.3, 0.9])
    negatives = np.array([0.25, 0.8])
    assert metrics.recall_at_precision(positives, negatives, 1.0) == (0.5, 0.2)
    recall, threshold = metrics.recall_at_precision(positives, negatives, 0.75)
    assert recall == 0.75 and threshold == 0.3


def test_search_sample_keeps_every_negative_and_every_kind():
    from engine.evaluation.evaluate import sample

    kinds = np.array(["crop"] * 50 + ["scroll"] * 30 + ["unseen-page"] * 7)
    roles = np.array(["variant"] * 80 + ["negative"] * 7)
    chosen = sample(kinds, roles, 20)
    assert set(range(80, 87)) <= set(chosen.tolist())
    assert sum(kinds[chosen] == "crop") == 10 and sum(kinds[chosen] == "scroll") == 10
    assert sample(kinds, roles, None).tolist() == list(range(87))


def test_prune_drops_a_negative_that_is_a_reference_with_a_few_words_changed(tmp_path):
    from engine.evaluation.dataset import prune_ambiguous
    from engine.evaluation.manifest import Entry, write_manifest

    page = Image.new("RGB", (640, 400), "white")
    for y in range(20, 380, 24):  # lines of "text"
        page.paste((30, 30, 30), (40, y, 600, y + 10))
    other = page.copy()
    other.paste((30, 30, 30), (40, 200, 70, 210))  # a word changed: well under 1.5 % of the pixels
    different = Image.new("RGB", (640, 400), "white")
    different.paste((30, 30, 30), (40, 40, 300, 360))
    for name, image in (("ref", page), ("near", other), ("far", different)):
        image.save(tmp_path / f"{name}.png")
    common = {"source": "x", "site": "docs", "seed": 1}
    write_manifest(tmp_path, [
        Entry("ref", "ref.png", "reference", "ref", "original", **common),
        Entry("near", "near.png", "negative", None, "unseen-page", **{**common, "source": "y"}),
        Entry("far", "far.png", "negative", None, "unseen-page", **{**common, "source": "z"}),
    ])
    assert prune_ambiguous(tmp_path) == ["near"]
    assert [e.id for e in read_manifest(tmp_path)] == ["ref", "far"]


def test_reweighted_overall_uses_the_whole_sets_kind_counts():
    from engine.evaluation.evaluate import reweighted

    per_kind = {"crop": {"count": 2, "auto_accepted": 1.0, "found": 1.0, "wrong_accepts": 0.0},
                "scroll": {"count": 2, "auto_accepted": 0.0, "found": 0.5, "wrong_accepts": 0.5}}
    out = reweighted(per_kind, np.array(["crop"] * 3 + ["scroll"]))
    assert out["auto_accepted"] == 0.75 and out["found"] == 0.875 and out["count"] == 4


def test_feature_cache_is_reused_only_by_the_same_code(tiny_set, report, monkeypatch):
    """The report fixture filled the cache; a change of the algorithms' code must recompute."""
    from engine.evaluation import features
    from engine.evaluation.evaluate import algorithms_for

    computed = []
    real_compute = features.compute_table
    monkeypatch.setattr(features, "compute_table",
                        lambda *a, **k: computed.append(1) or real_compute(*a, **k))
    settings, entries = load_settings(), read_manifest(tiny_set)
    measured = algorithms_for(settings)  # what the report measured
    features.cached_table(tiny_set, entries, settings, False, measured)
    assert computed == []  # same code: the cached table serves
    monkeypatch.setattr(features, "code_version", lambda: "other code")
    features.cached_table(tiny_set, entries, settings, False, measured)
    assert computed == [1]


class _FlakyCdp:
    """Answers Page.captureScreenshot as Chromium does, after ``failures`` transient errors."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def send(self, method: str, params: dict) -> dict:
        assert method == "Page.captureScreenshot" and params["format"] == "png"
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("Protocol error (Page.captureScreenshot): Unable to capture screenshot")
        return {"data": base64.b64encode(PNG_SIGNATURE).decode()}


class _Page:
    def __init__(self) -> None:
        self.waited: list[int] = []

    def wait_for_timeout(self, ms: int) -> None:
        self.waited.append(ms)


@pytest.mark.parametrize("failures", [0, 1, render.CAPTURE_ATTEMPTS - 1, render.CAPTURE_ATTEMPTS])
def test_a_transient_capture_failure_is_retried(failures: int) -> None:
    """Chromium's capture call fails now and then on a loaded machine (seen in CI): retried, bounded."""
    renderer = object.__new__(render.Renderer)
    renderer._cdp, renderer._page = _FlakyCdp(failures), _Page()
    if failures < render.CAPTURE_ATTEMPTS:
        assert renderer.screenshot_png() == PNG_SIGNATURE
    else:
        with pytest.raises(render.RenderError, match="Unable to capture"):
            renderer.screenshot_png()
    assert renderer._cdp.calls == min(failures + 1, render.CAPTURE_ATTEMPTS)
    assert len(renderer._page.waited) == min(failures, render.CAPTURE_ATTEMPTS - 1)
