"""Feature versions: a store written by another algorithm version is refused or re-extracted, never
compared; ``quaid reindex`` re-extracts it, resumably, and survives ``kill -9`` at any point.

An "older quaid" is simulated through the real store: pictures are added by the real
:meth:`engine.core.Quaid.add` while pdq-screen carries another version number and extracts other bytes
(its hash with every bit flipped), as a changed extractor would.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.algorithms.pdq_screen import PDQScreen
from engine.core import Quaid
from engine.errors import NotAPicture, StaleStore
from engine.picture import NORMALISATION
from engine.reindex import originals_in, reindex
from engine.store import keys
from engine.store.versions import VersionCheck, decode, encode
from tests.drawing import drawn, variant

ROOT = Path(__file__).resolve().parents[1]
OLD_VERSION = PDQScreen.version + 41


def flipped(feature: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in feature)


class OlderPDQ:
    """Makes pdq-screen "another version" (other version number, other feature bytes) until ``undo``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def start(self) -> None:
        extract, orientations = PDQScreen.extract, PDQScreen.extract_orientations
        self.monkeypatch.setattr(PDQScreen, "version", OLD_VERSION)
        self.monkeypatch.setattr(PDQScreen, "extract", lambda self, picture: flipped(extract(self, picture)))
        self.monkeypatch.setattr(PDQScreen, "extract_orientations",
                                 lambda self, picture: [flipped(f) for f in orientations(self, picture)])

    def undo(self) -> None:
        self.monkeypatch.undo()


@pytest.fixture
def older_pdq(monkeypatch) -> OlderPDQ:
    return OlderPDQ(monkeypatch)


def add_old(redis, settings, pictures: list[bytes], older_pdq: OlderPDQ) -> None:
    older_pdq.start()
    with Quaid(redis, settings) as old:
        for data in pictures:
            assert old.add(data).status == "added"
    older_pdq.undo()  # pdq-screen is the current version again


def stored_pdq(redis, picture_id: str) -> tuple[bytes, bytes, dict]:
    return (redis.hget(keys.features(picture_id), "pdq-screen"),
            redis.hget(keys.codes(picture_id), "pdq-screen"),
            decode(redis.hget(keys.picture(picture_id), "versions")))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the check --------------------------------------------------------------------------------


def test_version_check_judges_only_enabled_algorithms_and_flags_unversioned_records():
    check = VersionCheck({"pdq": 2, "orb": 1})
    assert check.stale_names(encode({"pdq": 2, "orb": 1})) == ()
    assert check.stale_names(encode({"pdq": 1, "orb": 1})) == ("pdq",)
    assert check.stale_names(encode({"pdq": 2, "orb": 1, "tlsh": 9})) == ()  # tlsh is not enabled
    assert check.stale_names(encode({"orb": 1})) == ()  # no pdq feature: nothing to compare
    assert check.stale_names(b"") == ("orb", "pdq")  # written before features had versions
    assert check.stale_names(b"not json") == ("orb", "pdq")


def test_every_added_picture_records_its_feature_versions(quaid):
    picture_id = quaid.add(drawn(1)).id
    versions = decode(quaid.redis.hget(keys.picture(picture_id), "versions"))
    assert versions == {**{a.name: a.version for a in quaid.matcher.algorithms},
                        "working_side": quaid.settings.working_side, "normalisation": NORMALISATION}
    assert quaid.get(picture_id).versions == versions


def test_a_store_extracted_at_another_working_size_is_refused(redis, quaid_settings):
    """The working size changes every feature (pictures are scaled to it before extraction)."""
    with Quaid(redis, replace(quaid_settings, working_side=quaid_settings.working_side // 2)) as writer:
        writer.add(drawn(6, size=(1600, 1200)))
    with pytest.raises(StaleStore, match=f"working_side \\(1; now {quaid_settings.working_side}\\)"):
        Quaid(redis, quaid_settings)


def test_a_store_normalised_the_old_way_is_refused(redis, quaid_settings):
    """A record without the normalisation version was written when tall pictures were scaled by their
    long side: every feature of such a picture differs, so the whole store is re-extracted."""
    with Quaid(redis, quaid_settings) as writer:
        picture_id = writer.add(drawn(6)).id
    stored = decode(redis.hget(keys.picture(picture_id), "versions"))
    del stored["normalisation"]
    redis.hset(keys.picture(picture_id), "versions", encode(stored))
    with pytest.raises(StaleStore, match=f"normalisation \\(1; now v{NORMALISATION}\\)"):
        Quaid(redis, quaid_settings)


# --- refusal ----------------------------------------------------------------------------------


def test_a_store_written_by_another_version_is_refused_with_the_command_to_run(redis, quaid_settings,
                                                                                older_pdq):
    add_old(redis, quaid_settings, [drawn(1), drawn(2)], older_pdq)
    with pytest.raises(StaleStore) as refused:
        Quaid(redis, quaid_settings)
    message = str(refused.value)
    assert "\n" not in message
    assert "quaid reindex" in message and "pdq" in message and "2 picture(s)" in message


def test_a_store_written_before_versions_existed_is_refused(redis, quaid_settings):
    with Quaid(redis, quaid_settings) as writer:
        picture_id = writer.add(drawn(3)).id
    redis.hdel(keys.picture(picture_id), "versions")  # what the code before versioning wrote
    with pytest.raises(StaleStore, match="quaid reindex"):
        Quaid(redis, quaid_settings)


@pytest.mark.parametrize("command", ["search", "serve"])
def test_the_cli_refuses_a_stale_store_in_one_line_naming_reindex(redis, redis_server, quaid_settings,
                                                                   older_pdq, tmp_path, command):
    add_old(redis, quaid_settings, [drawn(4)], older_pdq)
    path = tmp_path / "q.png"
    path.write_bytes(drawn(4))
    args = ("search", str(path)) if command == "search" else ("serve", "--port", "0")
    done = quaid_cli(redis_server, tmp_path, *args)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if " INFO " not in line]  # serve logs its start
    assert len(lines) == 1 and lines[0].startswith(f"quaid {command}: ") and "quaid reindex" in lines[0]


def test_a_picture_stored_meanwhile_by_an_older_process_is_never_compared(redis, quaid_settings, older_pdq):
    """A running engine sees another process's write through the change stream; features of
    another version stay out of its searches (with the old bytes, PDQ would say "different")."""
    current = Quaid(redis, quaid_settings)
    try:
        copy = drawn(5)
        add_old(redis, quaid_settings, [copy], older_pdq)
        picture_id = sha(copy)
        assert all(m.id != picture_id for m in current.search(variant(copy)).matches)
        assert picture_id in current.mirror.stale
        assert current.refeature(picture_id, copy)  # re-extracted: now it is found
        assert current.search(variant(copy)).matches[0].id == picture_id
        assert not current.mirror.stale
    finally:
        current.close()


# --- reindex ----------------------------------------------------------------------------------


@pytest.mark.cluster  # the one-script rewrite must also hold on a Redis Cluster
def test_reindex_re_extracts_from_kept_originals_and_the_store_opens_again(redis, quaid_settings,
                                                                            older_pdq):
    settings = replace(quaid_settings, keep="original")
    pictures = [drawn(10 + n) for n in range(3)]
    add_old(redis, settings, pictures, older_pdq)
    with Quaid(redis, settings, allow_stale=True) as quaid:
        result = reindex(quaid, {}, progress=False)
    assert sorted(result.reindexed) == sorted(sha(p) for p in pictures)
    with Quaid(redis, settings) as quaid:  # not refused any more
        for data in pictures:
            fresh = quaid.matcher.query(quaid._load(data)).stored_features()
            feature, code, versions = stored_pdq(redis, sha(data))
            assert feature == fresh["pdq-screen"] and code == PDQScreen().code(fresh["pdq-screen"])
            assert versions["pdq-screen"] == PDQScreen.version
            assert quaid.search(variant(data)).matches[0].id == sha(data)


def test_reindex_never_uses_a_thumbnail_and_takes_originals_from_a_folder(redis, quaid_settings,
                                                                         older_pdq, tmp_path):
    pictures = [drawn(20 + n) for n in range(3)]
    add_old(redis, quaid_settings, pictures, older_pdq)  # default keep: thumbnails only
    with Quaid(redis, quaid_settings, allow_stale=True) as quaid:
        result = reindex(quaid, {}, progress=False)
        assert sorted(result.missing) == sorted(sha(p) for p in pictures) and not result.reindexed
    folder = tmp_path / "originals"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(pictures[0])
    (folder / "sub" / "b.png").write_bytes(pictures[1])
    (folder / "unrelated.png").write_bytes(drawn(99))
    with Quaid(redis, quaid_settings, allow_stale=True) as quaid:
        result = reindex(quaid, originals_in([folder], 10**8), progress=False)
        assert sorted(result.reindexed) == sorted(sha(p) for p in pictures[:2])
        assert result.missing == [sha(pictures[2])]
        assert list(quaid.mirror.stale) == [sha(pictures[2])]
    with pytest.raises(StaleStore, match="1 picture"):
        Quaid(redis, quaid_settings)


def test_a_picture_that_fails_to_re_extract_fails_alone(redis, quaid_settings, older_pdq, monkeypatch):
    settings = replace(quaid_settings, keep="original")
    pictures = [drawn(40 + n) for n in range(3)]
    add_old(redis, settings, pictures, older_pdq)
    with Quaid(redis, settings, allow_stale=True) as quaid:
        load = quaid._load

        def refuse_one(data: bytes):
            if data == pictures[1]:
                raise NotAPicture("cannot decode: truncated")
            return load(data)

        monkeypatch.setattr(quaid, "_load", refuse_one)
        result = reindex(quaid, {}, progress=False)
        assert result.failed == [(sha(pictures[1]), "cannot decode: truncated")]
        assert sorted(result.reindexed) == sorted(sha(p) for p in (pictures[0], pictures[2]))
        assert list(quaid.mirror.stale) == [sha(pictures[1])]


def test_reindex_cli_reports_missing_originals_and_drops_them_only_when_asked(redis, redis_server,
                                                                             quaid_settings, older_pdq,
                                                                             tmp_path):
    pictures = [drawn(30), drawn(31)]
    add_old(redis, quaid_settings, pictures, older_pdq)
    (tmp_path / "orig").mkdir()
    (tmp_path / "orig" / "one.png").write_bytes(pictures[0])
    done = quaid_cli(redis_server, tmp_path, "reindex", "--from", str(tmp_path / "orig"))
    assert done.returncode == 1
    assert '"reindexed": 1' in done.stdout and '"stale_left": 1' in done.stdout
    assert "--from" in done.stderr and "--drop-missing" in done.stderr
    listed = quaid_cli(redis_server, tmp_path, "reindex", "--list-missing")
    assert listed.stdout.split() == [sha(pictures[1])]
    dropped = quaid_cli(redis_server, tmp_path, "reindex", "--drop-missing")
    assert dropped.returncode == 0 and '"dropped": 1' in dropped.stdout
    assert redis.exists(keys.picture(sha(pictures[0]))) and not redis.exists(keys.picture(sha(pictures[1])))
    with Quaid(redis, quaid_settings):
        pass


def test_reindex_killed_mid_way_leaves_each_picture_whole_and_resumes(redis, redis_server, quaid_settings,
                                                                      older_pdq, tmp_path):
    folder = tmp_path / "originals"
    folder.mkdir()
    pictures = [drawn(100 + n, size=(480, 360)) for n in range(40)]
    for n, data in enumerate(pictures):
        (folder / f"{n}.png").write_bytes(data)
    older_pdq.start()
    with Quaid(redis, quaid_settings) as old:
        old_pdq = {}
        for data in pictures:
            old_pdq[old.add(data).id] = old.matcher.query(old._load(data)).stored_features()["pdq-screen"]
    older_pdq.undo()
    env = cli_env(redis_server, tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "engine", "reindex", "--from", str(folder)], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and renewed(redis, pictures) < 3:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = renewed(redis, pictures)
    assert 0 < done < len(pictures), "the kill must land mid-way for this test to mean anything"
    for data in pictures:  # each picture wholly old or wholly new
        feature, code, versions = stored_pdq(redis, sha(data))
        if versions["pdq-screen"] == OLD_VERSION:
            assert feature == old_pdq[sha(data)] and code == PDQScreen().code(feature)
        else:
            assert versions["pdq-screen"] == PDQScreen.version and feature == flipped(old_pdq[sha(data)])
            assert code == PDQScreen().code(feature)
    again = subprocess.run([sys.executable, "-m", "engine", "reindex", "--from", str(folder)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f'"reindexed": {len(pictures) - done}' in again.stdout
    assert renewed(redis, pictures) == len(pictures)
    with Quaid(redis, quaid_settings) as quaid:
        assert quaid.search(variant(pictures[7])).matches[0].id == sha(pictures[7])


# --- helpers ----------------------------------------------------------------------------------


def renewed(redis, pictures: list[bytes]) -> int:
    pipe = redis.pipeline(transaction=False)
    for data in pictures:
        pipe.hget(keys.picture(sha(data)), "versions")
    return sum(decode(raw).get("pdq-screen") == PDQScreen.version for raw in pipe.execute())


def cli_env(redis_server, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    env.update(QUAID_HOME=str(home / "home"), QUAID_REDIS_URL=redis_server.url, PYTHONPATH=str(ROOT))
    return env


def quaid_cli(redis_server, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=cli_env(redis_server, home),
                          capture_output=True, text=True, timeout=300)
