"""Probe the ORB verifier on template siblings against modified copies, per site.

    .venv/bin/python -m benchmarks.probe_siblings --cache /tmp/quaid-sibling-probe
    .venv/bin/python -m benchmarks.probe_siblings --cache ... --sites django,git,sphinx,debian-reference

Siblings are pages of one documentation family that share a template and
differ by a few lines: git's man pages, PostgreSQL's SQL command pages,
Python's shortest library pages, Django's reference pages, Sphinx's extension
pages (a title and a sentence beside a long sidebar), Apache's module pages and
Debian Reference's chapters. Each page is rendered at 1280x800 with headless
Chromium, with the copies a phishing kit or a capture makes (banner, changed
heading, cookie bar, scroll, other widths, crop, frame, recompression,
downscale). Every pair of siblings of one family is compared, and every copy
with its page. The verdict is the verifier's vote alone (what the pyramidal
merge settles on): YES = accepted, MAYBE = to-review.

Besides the pairs of real pages, every page gets a synthetic sibling: the
page with another page's title and first paragraphs (``sibling.png``), the
near-identical case. The same-template evidence of the ORB verifier
(:func:`engine.algorithms.changed_regions.explain`) is judged on every family;
``--sites`` reports on some of them.

Rendered pictures and every algorithm's features are cached in ``--cache``,
so reruns only measure.
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections import defaultdict
from pathlib import Path

from engine.config import load_settings
from engine.core import StoredQuery
from engine.decision import Decision
from engine.evaluation import page_captures
from engine.evaluation.render import open_renderer
from engine.matching import Matcher
from engine.picture import load_picture
from tests import screenshots

FAMILIES = {  # site -> (root, glob, pick): pick "small" takes the smallest pages (little content)
    "git": ("/usr/share/doc/git-doc", "git-*.html", "random"),
    "postgresql": ("/usr/share/doc/postgresql-doc-15/html", "sql-*.html", "random"),
    "python": ("/usr/share/doc/python3.11/html/library", "*.html", "small"),
    "django": ("/usr/share/doc/python-django-doc/html/ref", "**/*.html", "small"),
    "sphinx": ("/usr/share/doc/sphinx-doc/html/usage/extensions", "*.html", "small"),
    "apache": ("/usr/share/doc/apache2-doc/manual/en/mod", "mod_*.html", "random"),
    "debian-reference": ("/usr/share/debian-reference", "ch*.en.html", "random"),
}
MIN_BYTES = 3000


def family_pages(site: str, count: int, seed: int) -> list[Path]:
    root, pattern, pick = FAMILIES[site]
    files = sorted(p for p in Path(root).glob(pattern) if p.stat().st_size > MIN_BYTES)
    if pick == "small":
        return sorted(files, key=lambda p: p.stat().st_size)[:count]
    random.Random(seed).shuffle(files)
    return files[:count]


def render(cache: Path, count: int, seed: int) -> dict[str, dict[str, dict[str, Path]]]:
    """site -> page -> {"original": png, copy kind: png}; renders only what the cache lacks."""
    out: dict[str, dict[str, dict[str, Path]]] = {}
    todo = []
    for site in FAMILIES:
        for page in family_pages(site, count, seed):
            folder = cache / site / page.stem
            shots = {p.stem: p for p in sorted(folder.glob("*.png"))}
            out.setdefault(site, {})[page.stem] = shots
            if "original" not in shots:
                todo.append((site, page, folder))
    if todo:
        with screenshots.renderer() as r:
            for site, page, folder in todo:
                folder.mkdir(parents=True, exist_ok=True)
                original = r.shot(page.as_uri())
                images = {"original": original, **screenshots.modified_copies(r, page.as_uri(), original)}
                for name, image in images.items():
                    image.save(folder / f"{name}.png")
                out[site][page.stem] = {p.stem: p for p in sorted(folder.glob("*.png"))}
    _render_synthetic_siblings(cache, count, seed, out)
    return out


def _render_synthetic_siblings(cache: Path, count: int, seed: int, out: dict) -> None:
    """Each page with another page's title and first paragraphs (``sibling.png``), as match-data's
    ``sibling-synthetic`` negatives are made (engine.evaluation.page_captures.synthetic_sibling)."""
    todo = [(site, page) for site in FAMILIES for page in family_pages(site, count, seed)
            if not (cache / site / page.stem / "sibling.png").exists()]
    if not todo:
        return
    with open_renderer() as renderer:
        for site, page in todo:
            root, pattern, _ = FAMILIES[site]
            donors = sorted(p for p in Path(root).glob(pattern) if p.stat().st_size > MIN_BYTES)
            renderer.load(page, 1280, 800)
            made = page_captures.synthetic_sibling(renderer, donors, page, random.Random(f"{seed}:{page}"))
            if made is not None:
                (cache / site / page.stem / "sibling.png").write_bytes(made[0])
                out[site][page.stem]["sibling"] = cache / site / page.stem / "sibling.png"


def features(matcher: Matcher, paths: list[Path]) -> dict[Path, dict[str, bytes]]:
    """Every enabled algorithm's feature, cached next to each PNG (``<stem>.<algorithm>``).

    Delete the cached files after changing an extractor.
    """
    result = {}
    for path in paths:
        cached = {a.name: path.with_suffix(f".{a.name}") for a in matcher.algorithms}
        if all(c.exists() for c in cached.values()):
            result[path] = {name: c.read_bytes() for name, c in cached.items()}
        else:
            result[path] = matcher.extract(load_picture(path))
            for name, c in cached.items():
                c.write_bytes(result[path][name])
    return result


def measure(data: dict, matcher: Matcher, feature: dict[Path, dict[str, bytes]], sites: set[str]):
    """(kind -> decisions) of the copies and (site -> decisions) of the sibling pairs, for ``sites``."""
    copies: dict[str, list[Decision]] = defaultdict(list)
    siblings: dict[str, list[tuple[Decision, str]]] = defaultdict(list)

    def decide(query: Path, stored: Path) -> Decision:
        return matcher.compare(StoredQuery(matcher, feature[query]), feature[stored]).decision

    for site in sorted(sites):
        pages = data[site]
        for shots in pages.values():
            for kind, path in shots.items():
                if kind == "sibling":
                    decision = decide(path, shots["original"])
                    siblings[f"{site} (synthetic)"].append((decision, f"{site}: {path.parent.name}"))
                elif kind != "original":
                    copies[kind].append(decide(path, shots["original"]))
        for (name_a, a), (name_b, b) in itertools.combinations(pages.items(), 2):
            decision = decide(a["original"], b["original"])
            siblings[site].append((decision, f"{site}: {name_a} ~ {name_b}"))
    return copies, siblings


def report(copies: dict, siblings: dict) -> None:
    print(f"{'copy kind':<16}{'n':>5}{'accepted':>10}{'found':>8}")
    every = []
    for kind, votes in sorted(copies.items()):
        every += votes
        print(f"{kind:<16}{len(votes):>5}{_share(votes, {Decision.ACCEPTED}):>10.0%}"
              f"{_share(votes, {Decision.ACCEPTED, Decision.TO_REVIEW}):>8.0%}")
    print(f"{'all copies':<16}{len(every):>5}{_share(every, {Decision.ACCEPTED}):>10.1%}"
          f"{_share(every, {Decision.ACCEPTED, Decision.TO_REVIEW}):>8.1%}")
    print(f"{'siblings of':<28}{'n':>5}{'accepted':>10}{'review':>8}")
    pairs = []
    for site, votes in sorted(siblings.items()):
        pairs += votes
        plain = [v for v, _ in votes]
        _sibling_row(site, plain)
    _sibling_row("all siblings", [v for v, _ in pairs])
    for vote, name in pairs:
        if vote == Decision.ACCEPTED:
            print(f"  accepted sibling: {name}")


def _sibling_row(name: str, decisions: list[Decision]) -> None:
    print(f"{name:<28}{len(decisions):>5}{_share(decisions, {Decision.ACCEPTED}):>10.1%}"
          f"{_share(decisions, {Decision.TO_REVIEW}):>8.1%}")


def _share(votes: list[Decision], wanted: set[Decision]) -> float:
    return sum(v in wanted for v in votes) / len(votes) if votes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/quaid-sibling-probe"))
    parser.add_argument("--pages", type=int, default=8, help="pages per family")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", default=",".join(FAMILIES), help="comma-separated families to report on")
    args = parser.parse_args()
    data = render(args.cache, args.pages, args.seed)
    matcher = Matcher(load_settings())
    paths = [p for pages in data.values() for shots in pages.values() for p in shots.values()]
    feature = features(matcher, paths)
    copies, siblings = measure(data, matcher, feature, set(args.sites.split(",")))
    report(copies, siblings)


if __name__ == "__main__":
    main()
