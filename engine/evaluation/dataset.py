"""Build a reproducible evaluation set: references, their modified copies, negatives and distractors.

Where to start: :func:`build_dataset`. :mod:`engine.evaluation.plan` decides
which page plays which role. For each reference page the browser renders the
reference screenshot (1280 x 800 window) and, from the same page load, its
re-renders (:mod:`engine.evaluation.page_captures`); then Pillow draws the
other modifications (:mod:`engine.evaluation.modifications`). Negatives are
unseen pages of the same sites, which share the references' templates (the
hard case): ``unseen-page`` / ``unseen-app-page``, ``sibling`` (an unseen
template sibling of a stored page, a few lines apart) and
``sibling-synthetic`` (a stored page with another page's title and first
paragraphs). Distractors are stored pages no query is made from: they fill
the store with pages of the same templates. Photos (wallpapers) get photo
modifications, and unseen photos are negatives too.

Only true duplicates are dropped (under :data:`DUPLICATE_SHARE` of changed
pixels): a reference that repeats a stored page, a distractor or a negative
that repeats a stored page. Every page negative records ``changed_share``,
its smallest share of changed pixels against a stored page of its site, so
near-identical negatives can be told apart in the report.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.evaluation import journal, page_captures, sources
from engine.evaluation.manifest import Entry, read_manifest, write_manifest
from engine.evaluation.modifications import PHOTO_MODIFICATIONS, SCREENSHOT_MODIFICATIONS
from engine.evaluation.plan import Pick, Plan, plan_pages
from engine.evaluation.render import Renderer, RenderError, open_renderer
from engine.evaluation.thumbs import StoredThumbs, changed_shares, thumb

WINDOW = page_captures.WINDOW
PHOTO_SIDE = 1600  # pixels: long side of a reference photo
DUPLICATE_SHARE = 0.002  # share of changed pixels under which two screenshots are one picture
# Kept for :func:`prune_ambiguous` on sets built before siblings were labelled: under this share of changed
# pixels another page is "the same page with a few words changed" (0.3-1.4 %).
AMBIGUOUS_SHARE = 0.015


@dataclass(frozen=True)
class Size:
    """How many pictures of each role to make.

    ``siblings``: stored pages each with an unseen template sibling as a
    negative; ``sibling_references``: pairs of siblings both stored;
    ``synthetic_siblings``: references that also give a negative with
    another page's title and first paragraphs; ``full_page_references``:
    references stored as full-page captures, queried by their viewport.
    """

    pages: int
    page_negatives: int
    photos: int
    photo_negatives: int
    siblings: int = 0
    sibling_references: int = 0
    synthetic_siblings: int = 0
    distractors: int = 0
    full_page_references: int = 0


SIZES = {
    "tiny": Size(3, 2, 1, 1, siblings=1, sibling_references=1, synthetic_siblings=1, distractors=3,
                 full_page_references=1),
    "small": Size(14, 8, 4, 2, siblings=4, sibling_references=2, synthetic_siblings=3, distractors=30,
                  full_page_references=2),
    "full": Size(180, 150, 24, 6, siblings=60, sibling_references=20, synthetic_siblings=30, distractors=600,
                 full_page_references=20),
    "large": Size(260, 1300, 24, 6, siblings=200, sibling_references=40, synthetic_siblings=100,
                  distractors=5000, full_page_references=30),
}


def build_dataset(out: Path, size: Size | str = "small", seed: int = 1, progress: bool = True,
                  sites: tuple[sources.Site, ...] = sources.SITES, workers: int = 1) -> list[Entry]:
    """Write the set into ``out`` (pictures, ``manifest.jsonl``, ``dataset.json``); return the entries.

    ``sites`` narrows the sites used (tests use one or two). ``workers``
    browsers render at once, each its own sites (the set is the same for any
    number). An interrupted build started again with the same options
    resumes where it stopped (:mod:`engine.evaluation.journal`).
    """
    size = SIZES[size] if isinstance(size, str) else size
    out = Path(out)
    for role in ("references", "variants", "negatives", "distractors"):
        (out / role).mkdir(parents=True, exist_ok=True)
    plan = plan_pages(size, seed, sites)
    journal.check_plan(out, {"size": size.__dict__, "seed": seed, "sites": [s.name for s in sites]})
    photo_refs, photo_negs = _split_photos(size, seed)
    bar = _bar(len(plan) + len(photo_refs) + len(photo_negs), progress)
    bar.update(journal.count(out))
    groups = split_by_site(plan, workers)
    if len(groups) == 1:
        _render(out, groups[0], seed, bar.update)
    else:
        _render_in_parallel(out, groups, seed, bar)
    finished = journal.done(out)
    entries = [e for pick in plan.references + plan.distractors + plan.negatives for e in finished[pick.id]
               if not _unchanged_sibling(e)]
    for index, photo in enumerate(photo_refs):
        entries += _photo_reference(out, index, photo, seed)
        bar.update()
    for index, photo in enumerate(photo_negs):
        entries.append(_photo_negative(out, index, photo, seed))
        bar.update()
    bar.close()
    write_manifest(out, entries)
    _write_summary(out, entries, size, seed, plan, bar)
    journal.close(out)
    return entries


def _unchanged_sibling(entry: Entry) -> bool:
    """A synthetic sibling whose replaced text is out of sight (journals of builds that kept them)."""
    return entry.kind == "sibling-synthetic" and entry.params.get("changed_share", 1.0) < DUPLICATE_SHARE


def split_by_site(plan: Plan, workers: int) -> list[Plan]:
    """At most ``workers`` plans of whole sites with about as much work each (a reference counts 8 pages)."""
    work: dict[str, int] = {}
    for pick in plan.references + plan.distractors + plan.negatives:
        work[pick.site.name] = work.get(pick.site.name, 0) + (8 if pick.role == "reference" else 1)
    bins: list[tuple[int, set[str]]] = [(0, set()) for _ in range(max(1, min(workers, len(work))))]
    for site in sorted(work, key=lambda name: -work[name]):
        load, names = min(bins, key=lambda b: b[0])
        bins[bins.index((load, names))] = (load + work[site], names | {site})
    return [Plan(*([p for p in role if p.site.name in names]
                   for role in (plan.references, plan.negatives, plan.distractors))) for _, names in bins]


def _render(out: Path, plan: Plan, seed: int, tick=lambda: None) -> None:
    """Render the pages of ``plan`` not done yet, noting each in the journal (after recalling those done)."""
    finished = journal.done(out)
    stored = StoredThumbs()
    for pick in plan.references + plan.distractors:
        for entry in finished.get(pick.id, []):
            if entry.role in ("reference", "distractor"):
                _recall(out, stored, entry)
    steps = [(p, _page_reference) for p in plan.references] + [(p, _distractor) for p in plan.distractors]
    steps += [(p, _page_negative) for p in plan.negatives]
    with open_renderer() as renderer:
        for pick, make in steps:
            if pick.id in finished:
                continue
            journal.record(out, pick.site.name, pick.id, make(renderer, out, pick, seed, stored))
            tick()


def _recall(out: Path, stored: StoredThumbs, entry: Entry) -> None:
    path = out / entry.path
    if entry.params.get("capture") == "full-page":  # compared by its window, as when it was made
        path = out / "variants" / f"{entry.id}--viewport.png"
    with Image.open(path) as image:
        stored.add(entry.site, entry.id, image, path)


def _render_in_parallel(out: Path, groups: list[Plan], seed: int, bar) -> None:
    # Forked before any browser starts (each worker starts its own), so nothing of Playwright is shared;
    # a fork also spares re-importing the main module, which `python -m engine` does not guard.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(groups), mp_context=context) as pool:
        running = [pool.submit(_render, out, group, seed) for group in groups]
        while not all(f.done() for f in running):
            time.sleep(1.0)
            bar.update(journal.count(out) - bar.n)
        for future in running:
            future.result()  # a worker's error stops the build (the journal keeps what was done)


def _split_photos(size: Size, seed: int) -> tuple[list[Path], list[Path]]:
    photos = sources.photo_files()
    random.Random(f"{seed}:photos").shuffle(photos)
    refs = photos[: size.photos]
    return refs, photos[size.photos: size.photos + size.photo_negatives]


def _load(renderer: Renderer, page: Path) -> bytes | None:
    try:
        renderer.load(page, *WINDOW)
        return renderer.screenshot_png()
    except RenderError as exc:
        print(f"skipped {page}: {exc}", file=sys.stderr)
        return None


def _page_reference(renderer: Renderer, out: Path, pick: Pick, seed: int,
                    stored: StoredThumbs) -> list[Entry]:
    ref_id, site, page = pick.id, pick.site.name, pick.page
    rng = random.Random(f"{seed}:{ref_id}")
    reference_png = _load(renderer, page)
    if reference_png is None:
        return []
    reference = Image.open(io.BytesIO(reference_png)).convert("RGB")
    share, _ = stored.nearest(site, reference)
    if share < DUPLICATE_SHARE:
        return []
    # A full-page reference is compared by its window (its picture on disk is the whole page).
    stored.add(site, ref_id, reference, None if pick.full_page else out / "references" / f"{ref_id}.png")
    params = {"width": WINDOW[0], "height": WINDOW[1]}
    if pick.sibling_of:
        params["sibling_of"] = pick.sibling_of
    if pick.full_page:
        return _full_page_reference(renderer, out, pick, seed, reference_png, params)
    entries = [_save(out, "references", ref_id, reference_png, "reference", ref_id, "original", page, site,
                     seed, params)]
    if pick.synthetic_sibling:
        entries += _synthetic_sibling(renderer, out, pick, seed)
    try:
        for kind, image, params in page_captures.browser_variants(renderer, page, rng):
            suffix = f"-{params.pop('number')}" if "number" in params else ""
            entries.append(_save(out, "variants", f"{ref_id}--{kind}{suffix}", image, "variant", ref_id, kind,
                                 page, site, seed, params))
    except RenderError as exc:  # the copies made before the failure are kept
        print(f"some copies of {page} are missing: {exc}", file=sys.stderr)
    for kind, modify in SCREENSHOT_MODIFICATIONS.items():
        image, params = modify(reference, random.Random(f"{seed}:{ref_id}:{kind}"))
        entries.append(_save(out, "variants", f"{ref_id}--{kind}", image, "variant", ref_id, kind, page, site,
                             seed, params))
    return entries


def _full_page_reference(renderer: Renderer, out: Path, pick: Pick, seed: int, viewport_png: bytes,
                         params: dict) -> list[Entry]:
    """A reference stored as the whole page (as Lookyloo stores it), queried by its viewport capture."""
    site = pick.site.name
    full_png = renderer.full_page_png()
    height = Image.open(io.BytesIO(full_png)).height
    return [
        _save(out, "references", pick.id, full_png, "reference", pick.id, "original", pick.page, site, seed,
              {**params, "capture": "full-page", "height": height}),
        _save(out, "variants", f"{pick.id}--viewport", viewport_png, "variant", pick.id,
              "viewport-of-full-page", pick.page, site, seed, {"width": WINDOW[0], "height": WINDOW[1]}),
    ]


def _synthetic_sibling(renderer: Renderer, out: Path, pick: Pick, seed: int) -> list[Entry]:
    rng = random.Random(f"{seed}:{pick.id}:synthetic-sibling")
    made = page_captures.synthetic_sibling(renderer, sources.site_pages(pick.site), pick.page, rng)
    if made is None:
        return []
    shot, donor = made
    share = float(changed_shares(thumb(Image.open(io.BytesIO(shot)))[None],
                                 thumb(Image.open(io.BytesIO(renderer.screenshot_png()))))[0])
    if share < DUPLICATE_SHARE:  # the replaced text is out of sight: the page itself, not a sibling
        return []
    return [_save(out, "negatives", f"{pick.id}--sibling-synthetic", shot, "negative", None,
                  "sibling-synthetic", pick.page, pick.site.name, seed,
                  {"sibling_of": pick.id, "donor": str(donor), "changed_share": round(share, 4)})]


def _unseen_page(renderer: Renderer, pick: Pick,
                 stored: StoredThumbs) -> tuple[bytes, Image.Image, float, str | None] | None:
    """The page's screenshot, its picture, and its changed share to (and id of) the nearest stored
    page of its site; None when it did not render or duplicates a stored page."""
    png = _load(renderer, pick.page)
    if png is None:
        return None
    image = Image.open(io.BytesIO(png))
    share, nearest = stored.nearest(pick.site.name, image)
    if share < DUPLICATE_SHARE:
        return None
    return png, image, share, nearest


def _distractor(renderer: Renderer, out: Path, pick: Pick, seed: int, stored: StoredThumbs) -> list[Entry]:
    page = _unseen_page(renderer, pick, stored)
    if page is None:
        return []
    png, image, _, _ = page
    stored.add(pick.site.name, pick.id, image, out / "distractors" / f"{pick.id}.png")
    return [_save(out, "distractors", pick.id, png, "distractor", None, "distractor", pick.page,
                  pick.site.name, seed, {"width": WINDOW[0], "height": WINDOW[1]})]


def _page_negative(renderer: Renderer, out: Path, pick: Pick, seed: int, stored: StoredThumbs) -> list[Entry]:
    page = _unseen_page(renderer, pick, stored)
    if page is None:
        return []
    png, image, share, nearest = page
    params = {"width": WINDOW[0], "height": WINDOW[1], "changed_share": round(share, 4), "nearest": nearest}
    if pick.sibling_of:
        if not stored.has(pick.site.name, pick.sibling_of):
            return []  # its stored sibling could not be rendered (or repeated another page): dropped
        params["sibling_of"] = pick.sibling_of
        params["sibling_share"] = round(stored.share_to(pick.sibling_of, image), 4)
    return [_save(out, "negatives", pick.id, png, "negative", None, pick.kind, pick.page, pick.site.name,
                  seed, params)]


def _photo_reference(out: Path, index: int, photo: Path, seed: int) -> list[Entry]:
    ref_id = f"photo-{index:04d}"
    reference = _load_photo(photo)
    entries = [_save(out, "references", ref_id, reference, "reference", ref_id, "original", photo, "photos",
                     seed, {"jpeg_quality": 92})]
    for kind, modify in PHOTO_MODIFICATIONS.items():
        image, params = modify(reference, random.Random(f"{seed}:{ref_id}:{kind}"))
        params.setdefault("jpeg_quality", 90)
        entries.append(_save(out, "variants", f"{ref_id}--{kind}", image, "variant", ref_id, kind, photo,
                             "photos", seed, params))
    return entries


def _photo_negative(out: Path, index: int, photo: Path, seed: int) -> Entry:
    return _save(out, "negatives", f"photo-n{index:04d}", _load_photo(photo), "negative", None,
                 "unseen-photo", photo, "photos", seed, {"jpeg_quality": 92})


def _load_photo(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
        return image


def _save(out: Path, folder: str, name: str, image: Image.Image | bytes, role: str, reference: str | None,
          kind: str, source: Path, site: str, seed: int, params: dict) -> Entry:
    quality = params.get("jpeg_quality")
    rel = f"{folder}/{name}.{'jpg' if quality else 'png'}"
    if isinstance(image, bytes):  # a browser screenshot, already PNG
        (out / rel).write_bytes(image)
    elif quality:
        image.save(out / rel, "JPEG", quality=int(quality))
    else:
        image.save(out / rel, "PNG", compress_level=1)
    return Entry(id=name, path=rel, role=role, reference=reference, kind=kind, source=str(source),
                 site=site, seed=seed, params=params)


def prune_ambiguous(folder: Path, share: float = AMBIGUOUS_SHARE) -> list[str]:
    """Drop negatives within ``share`` changed pixels of a same-site reference; returns their ids.

    For sets built before near-identical siblings were labelled negatives of
    their own kinds; :func:`build_dataset` keeps them.
    """
    folder = Path(folder)
    entries = read_manifest(folder)
    refs = StoredThumbs()
    for e in entries:
        if e.role == "reference" and e.site != "photos":
            with Image.open(folder / e.path) as image:
                refs.add(e.site, e.id, image, folder / e.path)
    dropped = [e.id for e in entries if e.role == "negative" and e.site != "photos"
               and refs.nearest(e.site, Image.open(folder / e.path))[0] < share]
    if dropped:
        write_manifest(folder, [e for e in entries if e.id not in dropped])
        summary = folder / "dataset.json"
        if summary.exists():
            data = json.loads(summary.read_text())
            data["counts"] = _counts(e for e in entries if e.id not in dropped)
            data["pruned_ambiguous"] = sorted(set(data.get("pruned_ambiguous", [])) | set(dropped))
            summary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return dropped


def _counts(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for e in entries:
        counts.setdefault(e.role, {}).setdefault(e.kind, 0)
        counts[e.role][e.kind] += 1
    return counts


def _write_summary(out: Path, entries: list[Entry], size: Size, seed: int, plan, bar) -> None:
    elapsed = bar.format_dict.get("elapsed", 0.0)
    pages = sum(1 for e in entries if e.site != "photos")
    summary = {"seed": seed, "size": size.__dict__, "window": list(WINDOW), "counts": _counts(entries),
               "sites": sorted({p.site.name for p in plan.references + plan.negatives + plan.distractors}),
               "per_site": _per_site(entries), "build_seconds": round(elapsed, 1),
               "pictures_per_second": round(pages / elapsed, 2) if elapsed else None}
    (out / "dataset.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def _per_site(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for e in entries:
        counts.setdefault(e.site, {}).setdefault(e.role, 0)
        counts[e.site][e.role] += 1
    return counts


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="dataset", unit="source", file=sys.stderr, disable=not enabled)
