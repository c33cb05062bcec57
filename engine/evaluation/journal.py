"""The build's journal: which planned pages are done, so an interrupted ``quaid dataset build`` resumes.

One JSON line per finished page (its id and the manifest entries it gave),
in one file per site under ``<set>/progress/``: the build renders a site's
pages in one process, in order, so the pages done are a prefix of the
site's list and resuming skips them. A line cut short by an interruption is
ignored (that page is rendered again). ``plan.json`` records the size, seed
and sites; resuming with others is refused, as the plan would differ.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from engine.errors import BadInput
from engine.evaluation.manifest import Entry

FOLDER = "progress"


def check_plan(out: Path, plan_key: dict) -> None:
    """Record the plan's parameters, or refuse to resume a build made with other ones."""
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.json"
    if path.exists() and json.loads(path.read_text()) != plan_key:
        raise BadInput(f"{out} holds an unfinished build with another size, seed or sites: "
                       "remove the folder or build with the same options")
    path.write_text(json.dumps(plan_key, sort_keys=True))


def record(out: Path, site: str, pick_id: str, entries: list[Entry]) -> None:
    """Note one finished page (after its pictures are written)."""
    line = json.dumps({"pick": pick_id, "entries": [asdict(e) for e in entries]}, sort_keys=True)
    with open(Path(out) / FOLDER / f"{site}.jsonl", "a") as journal:
        journal.write(line + "\n")


def done(out: Path) -> dict[str, list[Entry]]:
    """The finished pages of every site: page id -> its entries."""
    finished: dict[str, list[Entry]] = {}
    for path in sorted((Path(out) / FOLDER).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                item = json.loads(line)
                finished[item["pick"]] = [Entry(**e) for e in item["entries"]]
            except (ValueError, KeyError, TypeError):
                continue  # cut short by an interruption
    return finished


def count(out: Path) -> int:
    """How many pages are finished (for the progress bar of a build running in other processes)."""
    total = 0
    for path in (Path(out) / FOLDER).glob("*.jsonl"):
        with open(path, "rb") as journal:
            total += sum(1 for _ in journal)
    return total


def close(out: Path) -> None:
    """Remove the journal once the manifest is written."""
    folder = Path(out) / FOLDER
    for path in folder.glob("*"):
        path.unlink()
    folder.rmdir()
