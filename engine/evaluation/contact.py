"""The contact sheet: the search path's worst false accepts and misses, query beside answer.

A figure says how often quaid is wrong; a person needs to see *how*: which page was taken for
which, which modification lost the copy. One self-contained HTML file (thumbnails embedded as
JPEG data URIs, no script, every text escaped) that opens anywhere and can be attached to a note.

- false accepts: negatives answered ``accepted``, and copies accepted with a wrong picture on
  top — surest first (smallest merged distance), as those are what automation would act on;
- misses: copies whose picture was not found (neither accepted nor to-review) — taken in turn
  from each modification kind, so one weak kind does not fill the sheet.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.evaluation.manifest import Entry
from engine.evaluation.search_run import SearchRun

LIMIT = 24  # cases of each sort on the sheet
THUMBNAIL = 280  # pixels, longer side
MAX_PIXELS = 60_000_000  # a dataset picture larger than this is not thumbnailed


@dataclass(frozen=True)
class Case:
    """One query, the answer it got (top match, or None) and the picture it should have found."""

    query: Entry
    answer: int  # reference index of the top match, -1: none
    expected: int  # reference index of its picture, -1: a negative (nothing to find)
    distance: float


def worst_cases(queries: list[Entry], truth: np.ndarray, run: SearchRun,
                limit: int = LIMIT) -> dict[str, list[Case]]:
    """``{"false_accepts": [...], "misses": [...]}`` from one search run (``queries`` in its order)."""
    flags = run.flags
    cases = [Case(q, int(run.top[i]), int(truth[i]), float(run.top_distance[i]))
             for i, q in enumerate(queries)]
    wrong = [c for i, c in enumerate(cases)
             if (c.expected < 0 and flags.accepted[i]) or (c.expected >= 0 and flags.wrong_accept[i])]
    wrong.sort(key=lambda c: (c.distance, c.query.id))
    missed = [c for i, c in enumerate(cases) if c.expected >= 0 and not flags.found[i]]
    return {"false_accepts": wrong[:limit], "misses": _round_robin(missed, limit)}


def _round_robin(cases: list[Case], limit: int) -> list[Case]:
    """Up to ``limit`` cases, one kind after another (kinds in name order, cases by id)."""
    by_kind: dict[str, list[Case]] = defaultdict(list)
    for case in sorted(cases, key=lambda c: c.query.id):
        by_kind[case.query.kind].append(case)
    out: list[Case] = []
    while len(out) < limit and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(out) < limit:
                out.append(by_kind[kind].pop(0))
    return out


def write_contact_sheet(path: Path, folder: Path, references: list[Entry],
                        cases: dict[str, list[Case]]) -> Path:
    """Write the sheet to ``path``; pictures are read from the dataset ``folder``."""
    sections = [
        _section("Worst false accepts", "accepted, but the answer is not the query's picture (surest first)",
                 cases.get("false_accepts", []), folder, references),
        _section("Misses", "copies whose picture was neither accepted nor sent to review (each kind in turn)",
                 cases.get("misses", []), folder, references),
    ]
    path.write_text(_PAGE.format(body="\n".join(sections)), encoding="utf-8")
    return path


def _section(title: str, note: str, cases: list[Case], folder: Path, references: list[Entry]) -> str:
    rows = [_row(case, folder, references) for case in cases] or ['<tr><td colspan="3">none</td></tr>']
    return (f"<h2>{html.escape(title)} ({len(cases)})</h2><p>{html.escape(note)}</p>\n"
            "<table><tr><th>query</th><th>answer (top match)</th><th>its own picture</th></tr>\n"
            + "\n".join(rows) + "\n</table>")


def _row(case: Case, folder: Path, references: list[Entry]) -> str:
    query = case.query
    distance = f"distance {case.distance:.3f}" if np.isfinite(case.distance) else "no match"
    answer = references[case.answer] if case.answer >= 0 else None
    expected = references[case.expected] if case.expected >= 0 else None
    if answer is not None and case.answer == case.expected:
        distance += ": its own picture, rejected"
    own = "its own picture" if expected is not None else "an unseen page: none to find"
    return ("<tr>" + _cell(folder, query, f"{query.role}, {query.kind}, site {query.site}")
            + _cell(folder, answer, distance) + _cell(folder, expected, own) + "</tr>")


def _cell(folder: Path, entry: Entry | None, caption: str) -> str:
    """A thumbnail with the entry's id and ``caption``; the caption alone when there is no entry."""
    if entry is None:
        return f"<td class=none>{html.escape(caption)}</td>"
    text = html.escape(f"{entry.id} — {caption}")
    return f'<td><img alt="{html.escape(entry.id)}" src="{_thumbnail(folder / entry.path)}"><br>{text}</td>'


def _thumbnail(path: Path) -> str:
    """A JPEG data URI of the picture scaled to :data:`THUMBNAIL`; empty when it cannot be read."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                return ""
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
    except (OSError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>quaid evaluation: contact sheet</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{vertical-align:top;padding:4px;font-size:12px;
max-width:300px;word-break:break-all}} td.none{{color:#888}} img{{border:1px solid #ccc}}</style>
</head><body><h1>quaid evaluation: contact sheet</h1>
{body}
</body></html>
"""
