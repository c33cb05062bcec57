"""Template siblings and rewritten text go to review with a reason; added blocks stay accepted.

Region counter on synthetic cell grids, then the ORB verifier and the merged
decision on drawn pages of one template (tests/test_orb.py's ``site_page``):
a sibling differs from its page in the title, the summary and a paragraph
lower down; a modified copy adds a banner, a consent dialog over the dimmed
page, or rewrites its heading (which pixels cannot tell from a sibling's
title, so it goes to review too).
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from engine.algorithms.changed_regions import explain
from engine.algorithms.orb import SAME_TEMPLATE, Orb
from engine.config import AlgorithmSettings, Settings, load_settings
from engine.core import Match, StoredQuery
from engine.decision import AlgorithmResult, Decision, Vote
from engine.matching import Matcher
from engine.picture import load_picture
from tests.test_orb import BIG, FONT, site_page

ORB = Orb()


def grid(rows: int, cols: int, changed: list[tuple[slice, slice]]) -> tuple[np.ndarray, np.ndarray]:
    """A content grid with ink everywhere and the given blocks changed."""
    content = np.ones((rows, cols), bool)
    diff = np.zeros((rows, cols), bool)
    for block in changed:
        diff[block] = True
    return diff, content


def explained(blocks: list[tuple[slice, slice]], gap: float = 0.0, gain: float = 1.0,
              dialog_seen: bool = False):
    """``explain`` on a 20 x 32 content grid; ``blocks`` changed strongly, their mean moved by ``gap``."""
    changed, content = grid(20, 32, blocks)
    strength = np.where(changed, 0.5, 0.0)
    mean_gap = np.where(changed, gap, 0.0)
    return explain(changed, strength, content, mean_gap, gain, dialog_seen)


def test_a_filled_strip_across_the_page_is_a_banner() -> None:
    found = explained([(slice(5, 7), slice(0, 32))], gap=80.0)
    assert found.kinds == ("banner",) and found.rewritten == 0 and found.explained.sum() == 64


def test_a_strip_on_the_page_background_is_rewritten_text() -> None:
    found = explained([(slice(5, 7), slice(0, 32))], gap=5.0)
    assert found.kinds == () and found.rewritten == 1 and not found.explained.any()


def test_a_box_is_a_dialog_only_on_its_own_background_over_a_dimmed_page() -> None:
    box = [(slice(6, 12), slice(10, 22))]
    assert explained(box, gap=120.0, gain=0.4).kinds == ("dialog",)
    assert explained(box, gap=120.0, gain=1.0).rewritten == 1  # not dimmed: content in place
    assert explained(box, gap=5.0, gain=0.4).rewritten == 1  # a colour-shifted page's rewritten block
    # seen from the bright side, the stretched dialog's background saturates into the page's white
    assert explained(box, gap=5.0, gain=2.5, dialog_seen=True).kinds == ("dialog",)


def test_a_dimmed_page_has_one_dialog_at_most() -> None:
    boxes = [(slice(2, 6), slice(4, 14)), (slice(12, 16), slice(16, 28))]
    found = explained(boxes, gap=120.0, gain=0.4)
    assert found.kinds == ("dialog",) and found.rewritten == 1


def test_one_strongly_changed_cell_is_rewritten_content() -> None:
    """Two API pages that differ in one function name differ in one cell at the thumbnail's resolution."""
    assert explained([(slice(9, 10), slice(20, 21))]).rewritten == 1


def test_a_change_on_the_outermost_row_is_a_cut_line() -> None:
    assert explained([(slice(0, 1), slice(3, 12))]).kinds == ("edge",)
    assert explained([(slice(1, 2), slice(3, 12))]).rewritten == 1


def test_added_blocks_over_half_the_picture_are_another_page() -> None:
    found = explained([(slice(2, 18), slice(4, 28))], gain=0.4)
    assert found.rewritten == 1 and not found.explained.any()


# ------------------------------------------------------------------ drawn pages


def sibling_page(seed: int, variant: int, lines: int = 2) -> Image.Image:
    """``site_page(seed)`` as another page of its reference: title, summary and ``lines`` lines of
    one paragraph differ.

    Like two command pages of one manual: the same template and most of the
    same boilerplate text, a different name, one-line summary and description.
    """
    page = site_page(seed)
    draw = ImageDraw.Draw(page)
    rng = random.Random(1000 * seed + variant)
    word = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))  # noqa: E731
    draw.rectangle((270, 95, 1270, 135), fill="white")
    draw.text((280, 100), f"Command {word()} reference", fill=(18, 53, 91), font=BIG)
    for top in (150, 470):  # the summary line under the title, a paragraph further down
        draw.rectangle((270, top, 1270, top + 24 * lines - 2), fill="white")
        for line in range(lines):
            x = 280
            while x < 1150:
                text = word()
                draw.text((x, top + 2 + 24 * line), text, fill=(30, 30, 30), font=FONT)
                x += int(draw.textlength(text, font=FONT)) + 6
    return page


def feature(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return ORB.extract(load_picture(out.getvalue()))


@pytest.fixture(scope="module")
def pages() -> dict[str, bytes]:
    return {
        "page": feature(site_page(5)),
        "sibling1": feature(sibling_page(5, 1)),
        "sibling2": feature(sibling_page(5, 2)),
        "banner": feature(site_page(5, banner=60)),
        "heading": feature(site_page(5, heading="Please confirm your card details")),
    }


@pytest.mark.parametrize("name", ["sibling1", "sibling2"])
def test_sibling_is_close_by_share_but_carries_the_reason(pages, name: str) -> None:
    comparison = ORB.compare(pages[name], pages["page"])
    shipped_yes = Matcher(load_settings()).thresholds("orb")[0]
    assert comparison.distance <= shipped_yes  # the share alone would accept it
    assert comparison.reason == SAME_TEMPLATE


def test_added_banner_is_yes_without_reason(pages) -> None:
    comparison = ORB.compare(pages["banner"], pages["page"])
    assert comparison.distance <= ORB.yes_threshold
    assert comparison.reason is None


def test_rewritten_heading_is_close_but_carries_the_reason(pages) -> None:
    """A heading rewritten in place is the same evidence as a sibling page's title: review, never accept."""
    comparison = ORB.compare(pages["heading"], pages["page"])
    assert comparison.distance <= ORB.yes_threshold
    assert comparison.reason == SAME_TEMPLATE


def consent_dialog(page: Image.Image, dim: float = 0.4) -> Image.Image:
    """The page dimmed behind a white consent dialog, as cookie-consent managers draw it."""
    dimmed = ImageEnhance.Brightness(page).enhance(dim)
    draw = ImageDraw.Draw(dimmed)
    draw.rounded_rectangle((420, 260, 860, 520), radius=12, fill="white")
    draw.text((450, 290), "We value your privacy", fill=(20, 20, 20), font=BIG)
    draw.text((450, 350), "We and our partners use cookies to store", fill=(40, 40, 40), font=FONT)
    draw.rectangle((450, 440, 620, 490), fill=(230, 230, 230))
    draw.rectangle((660, 440, 830, 490), fill=(20, 90, 200))
    return dimmed


@pytest.mark.parametrize("dim", [0.35, 0.6])
def test_consent_dialog_over_the_dimmed_page_is_yes_without_reason(pages, dim: float) -> None:
    """The dimmed page matches once its grey levels are fitted; the dialog is an added block."""
    comparison = ORB.compare(feature(consent_dialog(site_page(5), dim)), pages["page"])
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def test_a_box_over_the_undimmed_page_is_not_a_dialog(pages) -> None:
    """Without the dimmed page around it, a block of other content in place is rewritten content."""
    comparison = ORB.compare(feature(consent_dialog(site_page(5), 1.0)), pages["page"])
    assert comparison.reason == SAME_TEMPLATE


def test_a_paragraph_replaced_across_the_column_is_not_a_banner(pages) -> None:
    """Rewritten lines across the content's width have the page's own background: not a banner."""
    comparison = ORB.compare(feature(sibling_page(5, 3, lines=3)), pages["page"])
    assert comparison.reason == SAME_TEMPLATE


@pytest.mark.parametrize("make", [
    lambda im: im.resize((768, 480), Image.Resampling.LANCZOS),
    lambda im: im.crop((60, 40, 1220, 760)),
    lambda im: ImageOps.expand(im, border=(12, 90, 12, 12), fill=(220, 222, 228)).resize((1042, 722)),
    lambda im: ImageEnhance.Contrast(im).enhance(0.7),
], ids=["downscaled", "cropped", "framed", "less-contrast"])
def test_resampled_copies_carry_no_reason(pages, make) -> None:
    """Resampling leaves weak differences all over the page; they are not a sibling's strong ones."""
    comparison = ORB.compare(feature(make(site_page(5))), pages["page"])
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def test_sibling_is_never_accepted_by_the_matcher_and_the_answer_says_why(pages) -> None:
    """The reason overrules a YES by share (thresholds here accept any share) and any merged YES."""
    matcher = Matcher(Settings(algorithms={"orb": AlgorithmSettings(yes=1.0, maybe=1.0)}))
    query = StoredQuery(matcher, {"orb": pages["sibling1"]})
    result = matcher.score(query, "orb", pages["page"])
    assert result.reason == SAME_TEMPLATE and result.vote is Vote.MAYBE
    verdict = matcher.compare(query, {"orb": pages["page"]})
    assert verdict.decision is Decision.TO_REVIEW and verdict.reason == SAME_TEMPLATE
    answer = Match("0" * 64, "sibling", 1, (), verdict).to_json()
    assert answer["decision"] == "to-review" and answer["reason"] == SAME_TEMPLATE
    assert answer["algorithms"]["orb"]["reason"] == SAME_TEMPLATE


def test_merged_accept_is_downgraded_when_an_algorithm_gives_a_reason() -> None:
    """Whatever the merger, an algorithm's reason keeps the merged decision out of accepted."""
    matcher = Matcher(Settings(decision_merge="majority"))
    results = {"phash": AlgorithmResult(0.0, Vote.YES), "dhash": AlgorithmResult(0.0, Vote.YES),
               "orb": AlgorithmResult(0.01, Vote.MAYBE, SAME_TEMPLATE)}
    verdict = matcher._verdict(results, Decision.ACCEPTED)
    assert verdict.decision is Decision.TO_REVIEW and verdict.reason == SAME_TEMPLATE
    plain = matcher._verdict({"phash": AlgorithmResult(0.0, Vote.YES)}, Decision.ACCEPTED)
    assert plain.decision is Decision.ACCEPTED and plain.reason is None and "reason" not in plain.to_json()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_search_path_reviews_the_sibling_and_accepts_the_added_blocks(quaid) -> None:
    """Through add/search with the shipped defaults: the sibling and the rewritten heading are
    to-review with the reason, the banner and the consent dialog accepted."""
    quaid.add(_png(site_page(5)), name="page")
    quaid.add(_png(site_page(6)), name="other page")
    sibling = quaid.search(_png(sibling_page(5, 1))).to_json()
    assert sibling["decision"] == "to-review", sibling
    assert sibling["matches"][0]["name"] == "page" and sibling["matches"][0]["reason"] == SAME_TEMPLATE
    for edit in (site_page(5, banner=60), consent_dialog(site_page(5))):
        answer = quaid.search(_png(edit)).to_json()
        assert answer["decision"] == "accepted" and answer["matches"][0]["name"] == "page", answer
        assert "reason" not in answer["matches"][0]
    heading = quaid.search(_png(site_page(5, heading="Please confirm your card details"))).to_json()
    assert heading["decision"] == "to-review" and heading["matches"][0]["reason"] == SAME_TEMPLATE


def test_cli_table_shows_the_reason() -> None:
    from engine.cli.pictures import _search_table

    match = {"decision": "to-review", "distance": 0.05, "cluster": 3, "id": "ab" * 32, "name": "page"}
    matches = [{**match, "reason": SAME_TEMPLATE}, {**match, "decision": "accepted", "name": "copy"}]
    answer = {"query": "q.png", "decision": "to-review", "matches": matches}
    lines = _search_table(answer).splitlines()
    assert lines[1].endswith("page  (same-template)")
    assert lines[2].endswith("copy")


def test_rejected_verdict_carries_no_reason() -> None:
    matcher = Matcher(Settings(decision_merge="majority"))
    results = {"phash": AlgorithmResult(0.4, Vote.NO), "dhash": AlgorithmResult(0.4, Vote.NO),
               "orb": AlgorithmResult(0.1, Vote.MAYBE, SAME_TEMPLATE)}
    verdict = matcher._verdict(results, Decision.REJECTED)
    assert verdict.decision is Decision.REJECTED and verdict.reason is None
