"""Each exchanged hash equals what its reference tool computes from the same file.

References and where their outputs come from:

- image-match 1.1.2 (PyPI), ImageHash 4.3.2, pdqhash 0.2.8 called as ThreatExchange's
  ``pdq_hasher`` does: outputs recorded by ``tests/fixtures/conformance/record_references.py``
  in ``references.json`` (with the versions used; image-match pins scikit-image < 0.13, so it
  runs there unchanged on current scikit-image, installed without its dependencies);
- ForBild: pazifical/forbild-hashing at commit 37b28ca (Rust; no toolchain registry here), whose
  own test vectors (``src/hash.rs``, ``src/hashmath.rs``, ``src/editing.rs``) are repeated below.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from engine.algorithms import forbild, image_rs
from engine.algorithms.forbild import ForBild
from engine.algorithms.goldberg import Goldberg
from engine.algorithms.pdq import PDQ
from engine.algorithms.pdq_screen import PDQScreen
from engine.algorithms.whash import WHash
from engine.exchange import hash_record
from engine.picture import load_picture
from tests.drawing import drawn

FIXTURES = Path(__file__).parent / "fixtures" / "conformance"
RECORDED = json.loads((FIXTURES / "references.json").read_text())["pictures"]
NAMES = sorted(RECORDED)


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {name: hash_record((FIXTURES / name).read_bytes(), name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("algorithm", ["ahash", "phash", "dhash", "whash", "pdq", "pdq_quality", "goldberg"])
def test_exchanged_hash_equals_the_recorded_reference(records, name, algorithm):
    assert records[name]["hashes"][algorithm] == RECORDED[name][algorithm]


def test_record_shape(records):
    record = records["page.png"]
    assert set(record) == {"file", "id", "hashes"}
    assert record["file"] == "page.png" and len(record["id"]) == 64
    hashes = record["hashes"]
    assert len(hashes["goldberg"]) == 648 and all(isinstance(v, int) for v in hashes["goldberg"])
    assert len(hashes["forbild"]) == 64 and hashes["forbild"] == hashes["forbild"].upper()
    assert hashes["tlsh"].startswith("T1")
    assert records["flat.png"]["hashes"]["tlsh"] is None  # TLSH refuses a flat picture


def test_goldberg_algorithm_is_image_match_on_the_same_pixels():
    """Inside quaid the algorithm sees the normalised picture; a plain RGB picture is left as it is."""
    picture = load_picture(FIXTURES / "page.png")
    signature = np.frombuffer(Goldberg().extract(picture), np.int8).tolist()
    assert signature == RECORDED["page.png"]["goldberg"]


def test_goldberg_distance_is_image_matchs_normalized_distance():
    a = np.array(RECORDED["page.png"]["goldberg"], np.int8)
    b = np.array(RECORDED["photo.jpg"]["goldberg"], np.int8)
    a, b = a.astype(int), b.astype(int)
    expected = np.linalg.norm(b - a) / (np.linalg.norm(b) + np.linalg.norm(a))
    ours = Goldberg().distance(a.astype(np.int8).tobytes(), b.astype(np.int8).tobytes())
    assert ours == pytest.approx(expected, abs=1e-12)
    assert expected > 0


@pytest.mark.parametrize("name", ["page.png", "photo.jpg", "grey.png", "flat.png"])
def test_pdq_algorithm_is_the_exchanged_pdq_on_plain_pictures(name):
    """On a plain 8-bit picture within the working size the engine's pixels are the file's."""
    feature = PDQ().extract(load_picture(FIXTURES / name))
    assert (feature[:32].hex(), feature[32]) == (RECORDED[name]["pdq"], RECORDED[name]["pdq_quality"])


@pytest.mark.parametrize("seed", [2, 3])
def test_pdq_algorithm_hashes_the_whole_picture_not_a_thumbnail(seed):
    """A 1280 x 800 screenshot: ``pdq`` is pdqhash of all its pixels, as the exchanged value;
    ``pdq-screen`` hashes the 512-px grey thumbnail and lands some bits away."""
    data = drawn(seed, size=(1280, 800))
    picture = load_picture(data)
    bits, quality = pdqhash.compute(picture.rgb)
    feature = PDQ().extract(picture)
    assert feature == np.packbits(np.asarray(bits, np.uint8)).tobytes() + bytes([quality])
    assert feature[:32].hex() == hash_record(data, "page.png")["hashes"]["pdq"]
    screen = PDQScreen().extract(picture)
    assert 0 < PDQ().distance(feature, screen) <= PDQ.yes_threshold


def test_pdq_orientations_are_pdqhash_dihedral_in_its_order():
    picture = load_picture(drawn(5, size=(900, 600)))
    hashes, quality = pdqhash.compute_dihedral(picture.rgb)
    expected = [np.packbits(np.asarray(h, np.uint8)).tobytes() + bytes([quality]) for h in hashes]
    turned = PDQ().extract_orientations(picture)
    assert turned == expected and turned[0] == PDQ().extract(picture)
    turns = (Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_90)
    for method in turns:
        turned_hash = PDQ().extract(picture.transformed(method))  # within PDQ's match threshold of one
        assert min(PDQ().distance(turned_hash, h) for h in turned[1:]) <= PDQ.yes_threshold


def test_whash_algorithm_is_imagehash_default():
    for name in ("page.png", "photo.jpg"):
        picture = load_picture(FIXTURES / name)
        expected = np.packbits(imagehash.whash(Image.open(FIXTURES / name)).hash.ravel()).tobytes()
        assert WHash().extract(picture) == expected


# --- ForBild: the reference crate's own test vectors (forbild-hashing 37b28ca) -------------------

def _gradient() -> np.ndarray:
    """The crate's ``create_grayimage``: pixel (x, y) = x + y on 16x16."""
    y, x = np.mgrid[0:16, 0:16]
    return (x + y).astype(np.uint8)


#: ``src/hash.rs`` ``test_hash_from_path``: the 2017_China_Chongqing_Boats.jpg after
#: grey, Gaussian resize and mirroring, its quadrant medians and its 256 bits.
BOATS_GREY = [
    42, 34, 33, 34, 36, 51, 77, 99, 103, 91, 90, 91, 86, 82, 69, 53,
    102, 53, 46, 39, 45, 62, 74, 80, 80, 71, 71, 76, 78, 80, 78, 62,
    117, 64, 54, 50, 78, 102, 84, 71, 65, 65, 67, 69, 71, 71, 76, 54,
    107, 66, 62, 68, 113, 136, 92, 72, 63, 61, 57, 58, 57, 58, 73, 45,
    91, 66, 68, 85, 145, 178, 101, 73, 66, 66, 63, 59, 46, 46, 53, 31,
    76, 51, 51, 81, 136, 179, 94, 74, 69, 70, 66, 59, 43, 45, 44, 29,
    59, 41, 40, 68, 100, 131, 85, 82, 81, 78, 69, 60, 45, 46, 39, 31,
    42, 27, 42, 61, 78, 100, 85, 88, 116, 97, 70, 60, 51, 50, 41, 35,
    37, 36, 49, 68, 83, 115, 112, 115, 139, 85, 64, 57, 52, 50, 42, 37,
    39, 43, 62, 103, 123, 139, 146, 121, 106, 79, 61, 49, 51, 51, 47, 46,
    38, 46, 70, 111, 130, 123, 88, 74, 63, 48, 45, 53, 68, 65, 57, 63,
    41, 50, 48, 62, 67, 62, 81, 79, 56, 52, 60, 70, 69, 64, 66, 53,
    56, 39, 21, 25, 50, 55, 45, 47, 53, 70, 71, 68, 61, 60, 59, 29,
    51, 28, 26, 41, 75, 70, 40, 44, 65, 69, 67, 56, 60, 64, 32, 15,
    61, 27, 24, 33, 53, 51, 52, 65, 65, 62, 54, 43, 53, 40, 17, 16,
    37, 37, 26, 22, 27, 42, 63, 60, 51, 45, 37, 38, 43, 19, 14, 16,
]
BOATS_BITS = (
    "0000001111111110100000111111111010001110111111101000111000000010"
    "1001111011000000100111111110000000001111111000000000111111100000"
    "0001111111110000001111111110000000111111100011110001111110111110"
    "1000010001111110000011001111110010001011110000000000001100000000"
)
#: ``src/hash.rs`` ``test_set_binary_hash_from_grayimage``: the bits of the (x + y) gradient.
GRADIENT_BITS = (
    "0000000100000001000000110000001100000111000001110000111100001111"
    "0001111100011111001111110011111101111111011111111111111111111111"
) * 2
BOATS_MEDIANS = {"top left": 74, "top right": 65, "bottom left": 52, "bottom right": 56}


def test_forbild_boats_vector_bits_and_medians():
    small = np.array(BOATS_GREY, np.uint8).reshape(16, 16)
    medians = forbild.quadrant_medians(small)
    assert {"top left": medians[0, 0], "top right": medians[0, 8], "bottom left": medians[8, 0],
            "bottom right": medians[8, 8]} == BOATS_MEDIANS
    assert "".join(str(int(b)) for b in forbild.bits(small)) == BOATS_BITS


def test_forbild_gradient_vectors():
    small = _gradient()
    medians = forbild.quadrant_medians(small)
    assert (medians[0, 0], medians[0, 8], medians[8, 0], medians[8, 8]) == (7, 15, 15, 23)
    assert "".join(str(int(b)) for b in forbild.bits(small)) == GRADIENT_BITS
    assert forbild.mirror_by_brightest_pixel(small)[0, 0] == 30  # test_mirror_by_brightest_pixel


def test_forbild_grayscale_vector():
    """``test_color_to_grayscale``: RGBA (x + y) grey levels, pixel (10, 10) stays 20."""
    grey = np.repeat(_gradient()[..., None], 3, axis=2)
    assert image_rs.grayscale(grey)[10, 10] == 20


def test_forbild_hex_vector():
    """``test_to_hex``: the crate's binary string and its hex form."""
    binary = ("0001100101011100000001111001110101010011010100101100110010110110110101101010011001110011110011"
              "1011100110010001101100101101010100000110101000101100100010110001011110111011101000101100111010"
              "10101000010111010111000110001101101010010111101010101011111111111101")
    packed = np.packbits(np.array([int(c) for c in binary], np.uint8)).tobytes()
    expected = "195C079D5352CCB6D6A673CEE646CB541A8B22C5EEE8B3AA85D718DA97AABFFD"
    assert forbild.to_hex(packed + bytes(256)) == expected


def test_forbild_weighted_distance_vector():
    """``test_weighted_distance``: pixels 0..255, the second with its last 8 pixels set to 0."""
    first = np.arange(256, dtype=np.uint8).reshape(16, 16)
    second = first.copy()
    second.ravel()[-8:] = 0
    medians = forbild.quadrant_medians(first)
    assert (medians[0, 0], medians[0, 8], medians[8, 0], medians[8, 8]) == (64, 72, 192, 200)
    differ = forbild.bits(first) != forbild.bits(second)
    assert int(differ.sum()) == 16
    expected = 1000.0 * 16 * (22552.0 / 16.0) / (328040.0 / 240.0)
    assert forbild.weighted_distance(first, differ) == pytest.approx(expected, rel=1e-12)
    # quaid's distance: Hamming 16 > 8 and WD far above 16, so no match, from either side
    a, b = forbild.feature(first), forbild.feature(second)
    assert ForBild().distance(a, b) == ForBild().distance(b, a) > ForBild.yes_threshold


def test_forbild_two_stages_as_thresholds():
    small = np.array(BOATS_GREY, np.uint8).reshape(16, 16)
    near = small.copy()
    near[0, 0] = 0  # one pixel: a few bits at most
    algorithm = ForBild()
    assert algorithm.distance(forbild.feature(small), forbild.feature(small)) == 0.0
    assert algorithm.distance(forbild.feature(small), forbild.feature(near)) <= 0.05
    other = forbild.feature(np.ascontiguousarray(small[::-1, ::-1].T))
    assert algorithm.distance(forbild.feature(small), other) > algorithm.maybe_threshold


def test_forbild_resize_keeps_a_flat_picture_and_shrinks_to_16():
    flat = np.full((300, 200), 77, np.uint8)
    small = image_rs.resize_gaussian(flat, 16, 16)
    assert small.shape == (16, 16) and (small == 77).all()


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40, 1), (2, 2)])
def test_tiny_pictures_are_hashed_not_crashed(size):
    """Pictures one or two pixels wide or high still give every hash (crop, grid and resize hold)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "PNG")
    hashes = hash_record(buffer.getvalue(), "tiny.png")["hashes"]
    assert len(hashes["goldberg"]) == 648 and len(hashes["forbild"]) == 64
