"""ORB verifier: feature format, alignment, aligned difference, and the distance on drawn pictures.

The Chromium-rendered template case lives in tests/test_screenshots.py; here
pictures are drawn with Pillow so the tests are fast and exact.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from engine.algorithms import aligned_diff
from engine.algorithms.alignment import align
from engine.algorithms.orb import MAX_KEYPOINTS, Orb, canonical_scale
from engine.algorithms.orb_feature import pack, unpack
from engine.errors import BadInput
from engine.picture import Picture, load_picture

ORB = Orb()
WORDS_SEEDS = range(1, 5)
FONT = ImageFont.load_default(size=15)  # Pillow's scalable built-in font: text as browsers draw it
BIG = ImageFont.load_default(size=24)


def site_page(seed: int, banner: int = 0, heading: str | None = None) -> Image.Image:
    """A page of one drawn site: fixed header, menu and sidebar; seeded article text.

    ``banner`` pixels of red warning are inserted above the header and push the page down.
    """
    rng = random.Random(seed)
    page = Image.new("RGB", (1280, 800 + banner), "white")
    draw = ImageDraw.Draw(page)
    if banner:
        draw.rectangle((0, 0, 1280, banner), fill=(190, 0, 20))
        notice = "Your account is suspended: verify your identity now"
        draw.text((30, banner // 3), notice, fill="white", font=FONT)
    top = banner
    draw.rectangle((0, top, 1280, top + 70), fill=(18, 53, 91))
    draw.text((40, top + 20), "SecureBank", fill=(246, 180, 0), font=BIG)
    for i, item in enumerate(("Accounts", "Cards", "Loans", "Help", "Contact")):
        draw.text((260 + 110 * i, top + 26), item, fill="white", font=FONT)
    draw.rectangle((0, top + 70, 240, top + 800), fill=(241, 244, 248))
    for i in range(16):
        draw.text((20, top + 95 + 30 * i), f"Menu entry {i}", fill=(18, 53, 91), font=FONT)
    draw.text((280, top + 100), heading or f"Article {seed} about things", fill=(18, 53, 91), font=BIG)
    y = top + 150
    while y < top + 760:
        x = 280
        while x < 1200:
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
            draw.text((x, y), word, fill=(30, 30, 30), font=FONT)
            x += int(draw.textlength(word, font=FONT)) + 6
        y += 24 if rng.random() > 0.15 else 44
    return page.crop((0, 0, 1280, 800))


def photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(field, "RGB").resize((1024, 768), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, r = (int(v) for v in rng.integers(0, 1000, 3))
        draw.ellipse((x, y % 760, x + r % 90 + 10, y % 760 + r % 70 + 10),
                     fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def feature(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return ORB.extract(load_picture(out.getvalue()))


def test_feature_round_trip_and_size() -> None:
    data = feature(site_page(1))
    parsed = unpack(bytes(bytearray(data)))
    assert 100 < len(parsed.points) <= MAX_KEYPOINTS
    assert parsed.descriptors.shape == (len(parsed.points), 32)
    assert max(parsed.thumb.shape) == 512
    assert max(parsed.detail().shape) == 1280
    assert len(data) < 400 * 1024  # synthetic dense small text; rendered pages stay near 100 KB
    again = pack(parsed.width, parsed.height, parsed.points, parsed.descriptors, parsed.thumb,
                 parsed.detail())
    assert unpack(again).points.tobytes() == parsed.points.tobytes()
    assert unpack(again).descriptors.tobytes() == parsed.descriptors.tobytes()


@pytest.mark.parametrize("bad", [b"", b"QOR1", b"XXXX" + bytes(40)])
def test_malformed_feature_is_bad_input(bad: bytes) -> None:
    good = feature(site_page(1))
    with pytest.raises(BadInput):
        ORB.distance(good, bad)
    truncated = good[:-10]
    with pytest.raises(BadInput):
        ORB.distance(truncated, good)


def test_keypoints_spread_over_the_picture() -> None:
    parsed = unpack(feature(site_page(2)))
    rows = np.histogram(parsed.points[:, 1], bins=4, range=(0, 800))[0]
    assert (rows > 30).all(), rows  # header, body and bottom all keep keypoints


def test_identical_and_symmetric() -> None:
    a, b = feature(site_page(1)), feature(site_page(2))
    assert ORB.distance(a, a) == 0.0
    assert ORB.distance(a, b) == ORB.distance(b, a)


@pytest.mark.parametrize("make", [
    lambda im: ("JPEG", {"quality": 50}, im),
    lambda im: ("PNG", {}, im.resize((768, 480), Image.Resampling.LANCZOS)),
    lambda im: ("PNG", {}, ImageEnhance.Brightness(im).enhance(1.15)),
    lambda im: ("PNG", {}, ImageEnhance.Contrast(im).enhance(0.7)),
    lambda im: ("PNG", {}, im.crop((60, 40, 1220, 760))),
    lambda im: ("PNG", {}, ImageOps.expand(im, border=(12, 90, 12, 12), fill=(220, 222, 228))),
], ids=["jpeg50", "downscaled", "brighter", "less-contrast", "cropped", "frame"])
def test_modified_page_is_yes(make) -> None:
    original = site_page(3)
    fmt, params, copy = make(original)
    assert ORB.distance(feature(original), feature(copy, fmt, **params)) <= ORB.yes_threshold


def test_banner_that_pushes_the_page_down_is_yes() -> None:
    assert ORB.distance(feature(site_page(3)), feature(site_page(3, banner=60))) <= ORB.yes_threshold


def test_changed_heading_is_yes() -> None:
    edited = site_page(3, heading="Please confirm your card details")
    assert ORB.distance(feature(site_page(3)), feature(edited)) <= ORB.yes_threshold


def test_other_pages_of_the_same_site_are_never_yes() -> None:
    """Same header, menu and sidebar, other article: never YES, mostly NO (a few reach MAYBE)."""
    features = [feature(site_page(seed)) for seed in WORDS_SEEDS]
    distances = [ORB.distance(features[i], features[j])
                 for i in range(len(features)) for j in range(i + 1, len(features))]
    assert min(distances) > ORB.yes_threshold, distances
    assert sum(d > ORB.maybe_threshold for d in distances) >= len(distances) // 2, distances


@pytest.mark.parametrize("change", ["rotate3", "crop", "jpeg"])
def test_photo_copies_are_yes(change: str) -> None:
    image = photo(7)
    copy = {"rotate3": image.rotate(3, resample=Image.Resampling.BICUBIC),
            "crop": image.crop((80, 60, 1000, 700)), "jpeg": image}[change]
    fmt, params = ("JPEG", {"quality": 60}) if change == "jpeg" else ("PNG", {})
    assert ORB.distance(feature(image), feature(copy, fmt, **params)) <= ORB.yes_threshold


def test_unrelated_photos_and_photo_vs_page_are_no() -> None:
    a, b, page = feature(photo(7)), feature(photo(8)), feature(site_page(1))
    assert ORB.distance(a, b) > ORB.maybe_threshold
    assert ORB.distance(a, page) > ORB.maybe_threshold


def test_mirror_matches_through_the_query_orientations() -> None:
    image = photo(9)
    picture = load_picture(_png(image))
    mirrored = ORB.extract(load_picture(_png(ImageOps.mirror(image))))
    assert ORB.distance(ORB.extract(picture), mirrored) > ORB.maybe_threshold  # ORB is not mirror-invariant
    oriented = ORB.extract_orientations(picture)
    assert min(ORB.distance(f, mirrored) for f in oriented) <= ORB.yes_threshold


def test_blank_pictures() -> None:
    white = feature(Image.new("RGB", (1280, 800), "white"))
    grey = feature(Image.new("RGB", (1280, 800), "grey"))
    assert ORB.distance(white, white) == 0.0
    assert ORB.distance(white, grey) > ORB.maybe_threshold
    assert ORB.distance(white, feature(site_page(1))) == 1.0


def test_tiny_pictures_are_not_blown_up() -> None:
    canonical, factor = canonical_scale(np.zeros((4, 4), np.uint8))
    assert canonical.shape == (10, 10) and factor == 2.5
    assert ORB.distance(feature(Image.new("RGB", (1, 1))), feature(Image.new("RGB", (1, 1)))) == 0.0
    assert isinstance(load_picture(_png(Image.new("RGB", (3, 2)))), Picture)


def test_sequential_ransac_finds_the_shifted_part() -> None:
    """A banner splits the page into a fixed header and content moved down: two models."""
    plain, shifted = unpack(feature(site_page(4))), unpack(feature(_banner_inside_header(site_page(4))))
    alignment = align(shifted.points, shifted.descriptors, plain.points, plain.descriptors)
    shifts = sorted(round(float(m[1, 2])) for m in alignment.models[:2])
    assert len(alignment.models) >= 2
    assert shifts[0] == pytest.approx(-50, abs=2) and shifts[1] == pytest.approx(0, abs=2)


def test_aligned_difference_counts_changed_content_cells() -> None:
    rng = np.random.default_rng(0)
    a = np.full((256, 256), 255, np.uint8)
    for y in range(0, 256, 16):  # one "line of text" per cell row
        a[y + 6:y + 10, 8:248] = rng.integers(0, 80, (4, 240))
    b = a.copy()
    b[32:64, :] = 255 - b[32:64, :]  # two cell rows of 16 change
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    result = aligned_diff.difference(a, b, [identity])
    assert result.counted == 256 and result.differing == 32
    assert result.share == pytest.approx(32 / 256)
    assert aligned_diff.difference(a, a, [identity]).share == 0.0


def _banner_inside_header(page: Image.Image) -> Image.Image:
    """The header stays, a 50-pixel notice appears below it and the rest moves down."""
    out = page.copy()
    out.paste(page.crop((0, 70, 1280, 750)), (0, 120))
    ImageDraw.Draw(out).rectangle((0, 70, 1280, 120), fill=(255, 230, 120))
    return out


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_further_alignment_models_only_shift_the_first_one() -> None:
    """Two rigid parts moved apart are two models; a part that matches only turned is not one."""
    rng = np.random.default_rng(3)
    descriptors = rng.integers(0, 256, (120, 32), dtype=np.uint8)
    points = rng.uniform(0, 1000, (120, 2)).astype(np.float32)
    moved = points.copy()
    # the first 60 points (the header) stay where they are
    moved[60:90] += (0, 80)  # the page below a banner moves down
    angle = np.radians(10)  # the rest lines up only if turned: other text fitted onto text
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    moved[90:] = points[90:] @ turn.T + (40, -30)
    models = align(points, descriptors, moved, descriptors).models
    assert len(models) == 2
    for model in models:
        assert np.allclose(model[:, :2], np.eye(2), atol=0.01)
