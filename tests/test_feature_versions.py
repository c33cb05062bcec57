"""An algorithm whose stored features change must get a new version.

Stores keep features across upgrades, and quaid compares a stored feature only with one of the
same version (:mod:`engine.store.versions`). A change to ``extract`` that alters its bytes
without raising ``version`` would be compared silently with features of the old code. This
test keeps, per algorithm, its version and a digest of its features on two fixed drawn
pictures; it fails when the features change and the version does not.

When it fails after an intended change: raise the algorithm's ``version`` (stores then need
``quaid reindex``), and record the new line printed by ``python -m tests.test_feature_versions``.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from engine import algorithms as registry
from engine.picture import load_picture
from tests.drawing import drawn, variant

#: name -> (version, first 16 hex digits of the SHA-256 of its features on the fixed pictures)
RECORDED: dict[str, tuple[int, str]] = {
    "ahash": (1, "50f4701f55e3d390"),
    "phash": (1, "40d7cc181616a3f2"),
    "dhash": (1, "1ce9d29734ea2b16"),
    "whash": (2, "fa3976b89780b687"),
    "ahash256": (1, "1b5d042d6e38962c"),
    "phash256": (1, "79f23bf3081e1137"),
    "dhash256": (1, "a836ed8d1a842057"),
    "whash256": (1, "d832b236b72ffebf"),
    "pdq": (2, "b0be7e1199d4401b"),
    "pdq-screen": (1, "a6d494fe628ca536"),
    "tlsh": (1, "3c5ce6143d3b5898"),
    "goldberg": (2, "5370a6830f779149"),
    "goldberg-screen": (1, "42248625b1e1f18e"),
    "forbild": (2, "1e7914ffcc748bfd"),
    "forbild-screen": (1, "7d59de6747d4dd06"),
    "orb": (2, "238d74754f7d25fc"),
    "regions": (1, "d2d0f3721f40dafb"),
}


def digest(cls: type) -> str:
    pictures = [load_picture(drawn(1)), load_picture(variant(drawn(2)))]
    algorithm = cls()
    hashed = hashlib.sha256()
    for picture in pictures:
        hashed.update(algorithm.extract(picture))
    return hashed.hexdigest()[:16]


@pytest.mark.parametrize("cls", registry.ALGORITHMS, ids=lambda cls: cls.name)
def test_changed_features_come_with_a_new_version(cls):
    assert cls.name in RECORDED, f"{cls.name}: new algorithm, record {(cls.version, digest(cls))}"
    version, recorded = RECORDED[cls.name]
    now = digest(cls)
    assert cls.version >= version, f"{cls.name}: version went down from {version} to {cls.version}"
    if cls.version == version:
        assert now == recorded, (f"{cls.name}: its features changed but its version is still {version}; "
                                 f"raise {cls.__name__}.version and record {(version + 1, now)}")
    else:
        pytest.fail(f"{cls.name}: version {cls.version} is not recorded; record {(cls.version, now)}")


if __name__ == "__main__":  # print the table to record
    print(json.dumps({cls.name: (cls.version, digest(cls)) for cls in registry.ALGORITHMS}, indent=1))
