"""The report's peer rows come from the peers' own packages, on the files as those packages read them.

A small generated set (no browser): drawn pages, a re-scaled copy, an unrelated
negative, and a copy stored rotated with an EXIF orientation that restores it.
quaid applies the EXIF orientation; ImageHash, pdqhash and image-match do not
(the file as Pillow opens it), so on that copy the peer rows must differ from
quaid's own algorithms of the same name.
"""

from __future__ import annotations

import io
import json
from importlib.metadata import version

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from engine.algorithms import goldberg
from engine.config import load_settings
from engine.evaluation.evaluate import evaluate
from engine.evaluation.manifest import read_manifest
from engine.evaluation.peers import PEERS, peer_matrices
from tests.drawing import drawn, variant

ROTATED = "ref-1--exif-rotated"


def _rotated_with_exif(data: bytes) -> bytes:
    """The picture's pixels turned a quarter left, with EXIF orientation 6 ("turn right to view")."""
    image = Image.open(io.BytesIO(data)).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def _line(id_: str, path: str, role: str, reference: str | None, kind: str) -> dict:
    return {"id": id_, "path": path, "role": role, "reference": reference, "kind": kind,
            "source": id_.split("--")[0], "site": "drawn", "seed": 0, "params": {}}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peer-set")
    lines, files = [], {}
    for seed in (1, 2, 3):
        reference = drawn(seed, size=(800, 500))
        files[f"references/ref-{seed}.png"] = reference
        lines.append(_line(f"ref-{seed}", f"references/ref-{seed}.png", "reference", f"ref-{seed}",
                           "original"))
        files[f"variants/ref-{seed}--scale.jpg"] = variant(reference, scale=0.7)
        lines.append(_line(f"ref-{seed}--scale", f"variants/ref-{seed}--scale.jpg", "variant", f"ref-{seed}",
                           "scale"))
    files[f"variants/{ROTATED}.jpg"] = _rotated_with_exif(files["references/ref-1.png"])
    lines.append(_line(ROTATED, f"variants/{ROTATED}.jpg", "variant", "ref-1", "exif-rotated"))
    files["negatives/other.png"] = drawn(99, size=(800, 500))
    lines.append(_line("other", "negatives/other.png", "negative", None, "unseen-page"))
    for path, data in files.items():
        (folder / path).parent.mkdir(exist_ok=True)
        (folder / path).write_bytes(data)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def _split(folder):
    entries = read_manifest(folder)
    return ([e for e in entries if e.role == "reference"], [e for e in entries if e.role != "reference"])


def _open(folder, entry) -> Image.Image:
    with Image.open(folder / entry.path) as opened:
        opened.load()
        return opened.copy()


def test_phash_and_pdq_rows_are_the_packages_own_distances(small_set):
    references, queries = _split(small_set)
    matrices, ms = peer_matrices(small_set, references, queries, progress=False)
    for i, query in enumerate(queries):
        for j, reference in enumerate(references):
            q, r = _open(small_set, query), _open(small_set, reference)
            assert matrices["peer-phash"][i, j] == (imagehash.phash(q) - imagehash.phash(r)) / 64
            assert matrices["peer-dhash"][i, j] == (imagehash.dhash(q) - imagehash.dhash(r)) / 64
            q_bits, _ = pdqhash.compute(np.asarray(q.convert("RGB")))
            r_bits, _ = pdqhash.compute(np.asarray(r.convert("RGB")))
            assert matrices["peer-pdq"][i, j] == np.count_nonzero(q_bits != r_bits) / 256
    assert set(ms) == {p.name for p in PEERS} and all(v > 0 for v in ms.values())


def test_the_goldberg_row_is_image_matchs_signature_of_the_file_as_opened(small_set):
    references, queries = _split(small_set)
    matrices, _ms = peer_matrices(small_set, references, queries, progress=False)
    rotated = next(i for i, q in enumerate(queries) if q.id == ROTATED)
    stored = goldberg.signature(np.asarray(_open(small_set, references[0]).convert("RGB")))
    turned = goldberg.signature(np.asarray(_open(small_set, queries[rotated]).convert("RGB")))
    assert matrices["peer-goldberg"][rotated, 0] == goldberg.Goldberg().distance(turned.tobytes(),
                                                                                 stored.tobytes())
    assert matrices["peer-goldberg"][rotated, 0] > 0.45  # read without the EXIF turn: another picture


def test_each_row_names_the_package_and_version_it_ran(small_set, tmp_path):
    report = evaluate(small_set, load_settings(home=str(tmp_path)), progress=False, search=False)
    labels = {name: row["label"] for name, row in report["peers"].items()}
    assert f"ImageHash {version('ImageHash')} phash" in labels["peer-phash"]
    assert f"ImageHash {version('ImageHash')} dhash" in labels["peer-dhash"]
    assert f"pdqhash {version('pdqhash')}" in labels["peer-pdq"]
    assert "image-match 1.1.2" in labels["peer-goldberg"]
    assert "quaid's bit-exact port" in labels["peer-goldberg"]
    assert all(row["package"] in row["label"] for row in report["peers"].values())


def test_peer_rows_are_not_quaids_algorithms_of_the_same_name(small_set, tmp_path):
    """With quaid's phash, dhash, pdq and goldberg all measured, the peers are still computed apart."""
    same_names = {name: {"enabled": True} for name in ("phash", "dhash", "pdq", "goldberg")}
    settings = load_settings(home=str(tmp_path), algorithms=same_names)
    report = evaluate(small_set, settings, progress=False, search=False)
    for algorithm, peer in (("phash", "peer-phash"), ("pdq", "peer-pdq"), ("goldberg", "peer-goldberg")):
        ours = report["algorithms"][algorithm]["kinds"]["exif-rotated"]["found"]
        theirs = report["peers"][peer]["kinds"]["exif-rotated"]["found"]
        assert (ours, theirs) == (1.0, 0.0), algorithm
