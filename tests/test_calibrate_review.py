"""``quaid calibrate --review``: thresholds from the review queue's verdicts, run as a real program.

The store is real (the embedded Redis of a fresh QUAID_HOME), filled through
:class:`engine.review.ReviewQueue`'s own ``record`` / ``judge``; the
command runs as ``python -m engine`` and its settings file is read back with
:func:`engine.config.load_settings`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.core import Quaid
from engine.review import ReviewQueue
from engine.store import EmbeddedRedis
from tests.drawing import drawn
from tests.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
FITTED = ("pdq-screen", "phash")  # every label carries their distances
SPARSE = "orb"  # only a few labels carry it (as when the pyramidal merger skips the verifier)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    for used in (home, home.parent / "other-home"):
        EmbeddedRedis(used / "redis").stop()  # the test's and the service's embedded Redis


def quaid_cli(home: Path, *args: str, config: Path | None = None,
              extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    env.update(QUAID_HOME=str(home), PYTHONPATH=str(ROOT), **(extra or {}))
    if config is not None:
        env["QUAID_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def judged_store(home: Path, same: int, different: int, seed: int = 7) -> dict[bool, dict[str, list[float]]]:
    """Record ``same + different`` to-review pairs and judge them; returns the distances per label."""
    rng = random.Random(seed)
    distances: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    with Quaid.open(load_settings(home=home)) as store:
        queue = ReviewQueue(store.redis)
        for i in range(same + different):
            is_same = i < same
            algorithms = {}
            for name in FITTED:  # same pairs close, different pairs far, with a gap between
                low, high = (0.02, 0.18) if is_same else (0.27, 0.45)
                algorithms[name] = {"distance": round(rng.uniform(low, high), 6), "decision": "maybe"}
            if i % 8 == 0:
                algorithms[SPARSE] = {"distance": 0.1, "decision": "maybe"}
            for name, result in algorithms.items():
                distances[is_same].setdefault(name, []).append(result["distance"])
            match = {"id": f"{i:064x}", "name": f"known-{i}.png", "decision": "to-review",
                     "distance": algorithms[FITTED[0]]["distance"], "algorithms": algorithms}
            query = drawn(1000 + i, size=(96, 72))
            items = queue.record(query, f"query-{i}.png", {"decision": "to-review", "matches": [match]})
            assert len(items) == 1
            queue.judge(items[0], "accepted" if is_same else "rejected")
        assert len(queue.labels()) == same + different
    return distances


def test_review_verdicts_calibrate_thresholds_that_separate_them(home, tmp_path):
    distances = judged_store(home, same=14, different=12)
    current = tmp_path / "current.json"  # the settings in force: orb and dhash must keep theirs
    current.write_text(json.dumps({"algorithms": {"orb": {"yes": 0.05, "maybe": 0.12},
                                                  "dhash": {"yes": 0.03, "maybe": 0.4}}}))
    out = tmp_path / "review-settings.json"

    run = quaid_cli(home, "calibrate", "--review", "--out", str(out), config=current)
    assert run.returncode == 0, run.stderr
    assert "14 pairs judged same, 12 judged different" in run.stdout
    assert "written:" in run.stdout and SPARSE in run.stdout.split("kept at")[1]

    written = json.loads(out.read_text())
    assert set(written) == {"algorithms", "decision_merge", "distance_merge"}
    os.environ["QUAID_CONFIG"] = str(out)
    try:
        settings = load_settings()
    finally:
        del os.environ["QUAID_CONFIG"]
    for name in FITTED:
        conf = settings.algorithm(name)
        assert max(distances[True][name]) <= conf.yes < min(distances[False][name])
        assert conf.yes <= conf.maybe < min(distances[False][name])
        row = next(line for line in run.stdout.splitlines() if line.startswith(f"| {name} |"))
        assert "| 100.0% | 100.0% | 0.0% | 0.0% |" in row  # expected rates on the judged pairs
    assert (settings.algorithm("orb").yes, settings.algorithm("orb").maybe) == (0.05, 0.12)
    assert (settings.algorithm("dhash").yes, settings.algorithm("dhash").maybe) == (0.03, 0.4)


def test_too_few_verdicts_are_refused_in_one_line(home, tmp_path):
    judged_store(home, same=12, different=4)
    out = tmp_path / "never.json"
    run = quaid_cli(home, "calibrate", "--review", "--out", str(out))
    assert run.returncode != 0
    message = run.stderr.strip()
    assert "\n" not in message and "too few review verdicts" in message and "4 different" in message
    assert not out.exists()


def test_dataset_and_review_are_exclusive(home, tmp_path):
    run = quaid_cli(home, "calibrate", str(tmp_path), "--review")
    assert run.returncode != 0 and "either a DATASET folder or --review" in run.stderr
    run = quaid_cli(home, "calibrate")
    assert run.returncode != 0 and "either a DATASET folder or --review" in run.stderr


def test_verdicts_read_from_a_running_service_with_its_api_key(home, tmp_path):
    distances = judged_store(home, same=10, different=10, seed=11)
    out = tmp_path / "from-service.json"
    with ServerProcess(home, {"QUAID_READ_KEYS": "calib-read-key"}) as server:
        elsewhere = tmp_path / "other-home"  # the local store of the calling machine is empty
        denied = quaid_cli(elsewhere, "calibrate", "--review", "--server", server.url, "--out", str(out))
        assert denied.returncode != 0 and len(denied.stderr.strip().splitlines()) == 1
        assert not out.exists()
        run = quaid_cli(elsewhere, "calibrate", "--review", "--server", server.url, "--out", str(out),
                        extra={"QUAID_API_KEY": "calib-read-key"})
    assert run.returncode == 0, run.stderr
    assert "10 pairs judged same, 10 judged different" in run.stdout
    written = json.loads(out.read_text())["algorithms"]
    for name in FITTED:
        assert max(distances[True][name]) <= written[name]["yes"] < min(distances[False][name])
