"""A store written before goldberg, forbild and pdq became the references' is refused until ``quaid reindex``.

Their screenshot variants, which the defaults use, are now ``goldberg-screen``,
``forbild-screen`` and ``pdq-screen``; such a store holds their features under the old names,
so without the refusal its pictures would silently lose those votes.
"""

from __future__ import annotations

import pytest

from engine.core import Quaid
from engine.errors import StaleStore
from engine.store import keys
from engine.store.versions import VersionCheck, decode, encode
from tests.drawing import drawn

RENAMED = {"goldberg": ("goldberg-screen", 2), "forbild": ("forbild-screen", 2), "pdq": ("pdq-screen", 2)}


def test_old_names_make_a_picture_stale_under_the_new_ones():
    check = VersionCheck({"goldberg-screen": 1, "forbild-screen": 1, "pdq-screen": 1}, RENAMED)
    assert check.stale_names(encode({"goldberg": 1, "forbild": 1, "pdq": 1})) == (
        "forbild-screen", "goldberg-screen", "pdq-screen")
    assert check.stale_names(encode({"goldberg-screen": 1, "forbild-screen": 1, "pdq-screen": 1})) == ()
    # the reference signature stored (version 2) beside the variant: written after the rename
    assert check.stale_names(encode({"goldberg": 2, "goldberg-screen": 1, "pdq": 2, "pdq-screen": 1,
                                     "forbild-screen": 1})) == ()


def test_a_store_from_before_the_rename_is_refused(redis, quaid_settings):
    with Quaid(redis, quaid_settings) as writer:
        picture_id = writer.add(drawn(4)).id
    versions = decode(redis.hget(keys.picture(picture_id), "versions"))
    assert "goldberg-screen" in versions  # the defaults use the variant
    assert "pdq-screen" in versions and "pdq" not in versions
    old = {n.removesuffix("-screen"): v for n, v in versions.items()}
    redis.hset(keys.picture(picture_id), "versions", encode(old))  # what the code before the rename wrote
    with pytest.raises(StaleStore, match="goldberg-screen.*pdq-screen.*quaid reindex"):
        Quaid(redis, quaid_settings)
