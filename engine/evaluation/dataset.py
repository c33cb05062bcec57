"""Build a reproducible evaluation set: references, their modified copies, and unseen negatives.

Where to start: :func:`build_dataset`. For each picked documentation page it
renders the reference screenshot (1280 x 800 window) and, from the same page
load, browser re-renders (other window sizes, scrolling, an injected banner,
a changed heading, as phishing kits do); then Pillow draws the other
modifications (:mod:`engine.evaluation.modifications`). Unseen pages of the
same sites are the negatives: they share the reference pages' templates,
which is the hard case. Photos (wallpapers) get photo modifications, and
unseen photos are negatives too.

Labels are checked, not assumed: a negative whose screenshot differs from a
reference of its site in under :data:`AMBIGUOUS_SHARE` of its pixels (release
notes of two versions that differ by a number) has no clear label, so it is
dropped (:func:`prune_ambiguous` applies the same rule to an existing set),
and so is a reference that duplicates an earlier one.
"""

from __future__ import annotations

import io
import json
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.evaluation import sources
from engine.evaluation.manifest import Entry, read_manifest, write_manifest
from engine.evaluation.modifications import PHOTO_MODIFICATIONS, SCREENSHOT_MODIFICATIONS
from engine.evaluation.render import Renderer, RenderError, open_renderer

WINDOW = (1280, 800)  # pixels: the reference window size
OTHER_WINDOWS = ((1024, 768), (1366, 768), (1440, 900), (1920, 1080), (800, 1000))
PHOTO_SIDE = 1600  # pixels: long side of a reference photo
DUPLICATE_SHARE = 0.002  # share of changed pixels under which two screenshots are one picture
# Under this share of changed pixels, another page is "the same page with a few words changed": DESIGN.md
# says to-review (pixels cannot tell it from a phishing edit, 0.3-1.4 %), so it is no clean negative.
AMBIGUOUS_SHARE = 0.015
BANNER_TEXTS = (
    "Security notice: your session has expired. Sign in again to continue.",
    "Your account will be suspended in 24 hours - verify your identity now",
    "Important: update your payment details to avoid service interruption",
    "This site uses cookies to improve your experience.",
    "We value your privacy. By continuing you accept our cookie policy.",
)
HEADINGS = ("Sign in to continue", "Verify your account", "Document shared with you",
            "Update required", "Confirm your identity", "Login")
BANNER_COLOURS = ("#c0392b", "#1f6feb", "#333333", "#e67e22", "#2e7d32")


@dataclass(frozen=True)
class Size:
    """How many pictures of each role to make."""

    pages: int
    page_negatives: int
    photos: int
    photo_negatives: int


SIZES = {
    "tiny": Size(3, 2, 1, 1),
    "small": Size(14, 8, 4, 2),
    "full": Size(180, 150, 24, 6),
}


def build_dataset(out: Path, size: Size | str = "small", seed: int = 1, progress: bool = True,
                  sites: tuple[sources.Site, ...] = sources.SITES) -> list[Entry]:
    """Write the set into ``out`` (pictures, ``manifest.jsonl``, ``dataset.json``); return the entries.

    ``sites`` narrows the documentation sites used (tests use one or two).
    """
    size = SIZES[size] if isinstance(size, str) else size
    out = Path(out)
    for role in ("references", "variants", "negatives"):
        (out / role).mkdir(parents=True, exist_ok=True)
    refs, negs = _split_pages(size, seed, sites)
    photo_refs, photo_negs = _split_photos(size, seed)
    bar = _bar(len(refs) + len(negs) + len(photo_refs) + len(photo_negs), progress)
    entries: list[Entry] = []
    thumbs: dict[str, list[np.ndarray]] = {}
    with open_renderer() as renderer:
        for site, index, page in refs:
            entries += _page_reference(renderer, out, site, index, page, seed, thumbs)
            bar.update()
        for site, index, page in negs:
            entries += _page_negative(renderer, out, site, index, page, seed, thumbs)
            bar.update()
    for index, photo in enumerate(photo_refs):
        entries += _photo_reference(out, index, photo, seed)
        bar.update()
    for index, photo in enumerate(photo_negs):
        entries.append(_photo_negative(out, index, photo, seed))
        bar.update()
    bar.close()
    write_manifest(out, entries)
    _write_summary(out, entries, size, seed)
    return entries


def _split_pages(size: Size, seed: int, sites: tuple[sources.Site, ...]) -> tuple[list, list]:
    """Per site, the first share of the shuffled pages are references, the rest negatives."""
    total = size.pages + size.page_negatives
    picked = sources.pick_pages(total, seed, sites)
    refs, negs = [], []
    for site, pages in picked.items():
        cut = max(1, round(len(pages) * size.pages / total))
        refs += [(site, i, p) for i, p in enumerate(pages[:cut])]
        negs += [(site, i, p) for i, p in enumerate(pages[cut:])]
    return refs, negs


def _split_photos(size: Size, seed: int) -> tuple[list[Path], list[Path]]:
    photos = sources.photo_files()
    random.Random(f"{seed}:photos").shuffle(photos)
    refs = photos[: size.photos]
    return refs, photos[size.photos: size.photos + size.photo_negatives]


def _page_reference(renderer: Renderer, out: Path, site: str, index: int, page: Path, seed: int,
                    thumbs: dict) -> list[Entry]:
    ref_id = f"{site}-{index:04d}"
    rng = random.Random(f"{seed}:{ref_id}")
    try:
        renderer.load(page, *WINDOW)
        reference_png = renderer.screenshot_png()
    except RenderError as exc:
        print(f"skipped {page}: {exc}", file=sys.stderr)
        return []
    reference = Image.open(io.BytesIO(reference_png)).convert("RGB")
    if _duplicate(reference, thumbs.setdefault(site, [])):
        return []
    entries = [_save(out, "references", ref_id, reference_png, "reference", ref_id, "original", page, site,
                     seed, {"width": WINDOW[0], "height": WINDOW[1]})]

    def variant(kind: str, image: Image.Image | bytes, params: dict, suffix: str = "") -> None:
        entries.append(_save(out, "variants", f"{ref_id}--{kind}{suffix}", image, "variant", ref_id, kind,
                             page, site, seed, params))

    for number, (w, h) in enumerate(rng.sample(OTHER_WINDOWS, 2)):
        variant("window-size", renderer.screenshot_png(w, h), {"width": w, "height": h}, f"-{number}")
    renderer.resize(*WINDOW)
    offset = renderer.scroll(rng.randint(120, 450))
    if offset >= 60:
        variant("scroll", renderer.screenshot_png(), {"offset": offset})
    renderer.undo()
    text, colour = rng.choice(BANNER_TEXTS), rng.choice(BANNER_COLOURS)
    if rng.random() < 0.5:
        height = rng.randint(36, 64)
        renderer.top_banner(text, colour, height)
        variant("banner", renderer.screenshot_png(), {"style": "top", "height": height, "text": text})
    else:
        height = rng.randint(56, 90)
        renderer.cookie_banner(text, colour, height)
        variant("banner", renderer.screenshot_png(), {"style": "overlay", "height": height, "text": text})
    renderer.undo()
    heading = rng.choice(HEADINGS)
    if renderer.change_heading(heading):
        variant("heading", renderer.screenshot_png(), {"text": heading})
    renderer.undo()
    for kind, modify in SCREENSHOT_MODIFICATIONS.items():
        image, params = modify(reference, random.Random(f"{seed}:{ref_id}:{kind}"))
        variant(kind, image, params)
    return entries


def _page_negative(renderer: Renderer, out: Path, site: str, index: int, page: Path, seed: int,
                   thumbs: dict) -> list[Entry]:
    try:
        renderer.load(page, *WINDOW)
        image_png = renderer.screenshot_png()
    except RenderError as exc:
        print(f"skipped {page}: {exc}", file=sys.stderr)
        return []
    if _duplicate(Image.open(io.BytesIO(image_png)), thumbs.get(site, []), remember=False,
                  share=AMBIGUOUS_SHARE):
        return []
    return [_save(out, "negatives", f"{site}-n{index:04d}", image_png, "negative", None, "unseen-page", page,
                  site, seed, {"width": WINDOW[0], "height": WINDOW[1]})]


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


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((640, 400), Image.Resampling.BILINEAR), dtype=np.int16)


def _duplicate(image: Image.Image, seen: list[np.ndarray], remember: bool = True,
               share: float = DUPLICATE_SHARE) -> bool:
    """True when ``image`` differs from a seen screenshot in under ``share`` of its pixels."""
    thumb = _thumb(image)
    for other in seen:
        if float(np.mean(np.abs(thumb - other) > 24)) < share:
            return True
    if remember:
        seen.append(thumb)
    return False


def prune_ambiguous(folder: Path, share: float = AMBIGUOUS_SHARE) -> list[str]:
    """Drop negatives within ``share`` changed pixels of a same-site reference; returns their ids."""
    folder = Path(folder)
    entries = read_manifest(folder)
    refs: dict[str, list[np.ndarray]] = {}
    for e in entries:
        if e.role == "reference" and e.site != "photos":
            refs.setdefault(e.site, []).append(_thumb(Image.open(folder / e.path)))
    dropped = [e.id for e in entries if e.role == "negative" and e.site in refs
               and _duplicate(Image.open(folder / e.path), refs[e.site], remember=False, share=share)]
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


def _write_summary(out: Path, entries: Iterable[Entry], size: Size, seed: int) -> None:
    summary = {"seed": seed, "size": size.__dict__, "window": list(WINDOW), "counts": _counts(entries),
               "sites": [s.name for s in sources.SITES]}
    (out / "dataset.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="dataset", unit="source", file=sys.stderr, disable=not enabled)
