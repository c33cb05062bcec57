"""Where the evaluation pictures come from: Debian documentation sites and wallpaper photos.

Why documentation sites: each one is a real website whose pages share one
template (header, sidebar, menus, fonts), exactly the situation that makes
global hashes call two different pages of one site "the same picture". They
are installed by Debian packages (``scripts/`` installs them), so the set can
be rebuilt offline on any machine.

Held out on purpose, never read here: the HTML documentation of rustup,
nodejs, npm, valgrind and libxslt, and the mate-backgrounds /
gnome-backgrounds photos (``/usr/share/backgrounds``); an independent
evaluation uses them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MIN_PAGE_BYTES = 3_000  # bytes; smaller files are redirects or empty stubs


@dataclass(frozen=True)
class Site:
    """One documentation site: a folder and a glob of its HTML pages."""

    name: str
    root: Path
    pattern: str
    weight: float  # share of the pages picked from this site


SITES: tuple[Site, ...] = (
    Site("python", Path("/usr/share/doc/python3.11/html"), "**/*.html", 0.20),
    Site("postgresql", Path("/usr/share/doc/postgresql-doc-15/html"), "*.html", 0.20),
    Site("apache", Path("/usr/share/doc/apache2-doc/manual/en"), "**/*.html", 0.16),
    Site("django", Path("/usr/share/doc/python-django-doc/html"), "**/*.html", 0.18),
    Site("git", Path("/usr/share/doc/git-doc"), "*.html", 0.14),
    Site("sphinx", Path("/usr/share/doc/sphinx-doc/html"), "**/*.html", 0.08),
    Site("debian-reference", Path("/usr/share/debian-reference"), "*.en.html", 0.04),
)
PHOTO_ROOTS: tuple[Path, ...] = (Path("/usr/share/wallpapers"),)
_SKIPPED_PARTS = {"_sources", "_static", "_downloads", "_images", "search.html", "genindex.html"}
_FAMILY_SUFFIX = re.compile(r"(_?wallpaper|LockScreen|WithLogo|Inksplat)$")


def site_pages(site: Site) -> list[Path]:
    """Every real page of ``site``, sorted (so a seed picks the same pages on every machine)."""
    if not site.root.is_dir():
        return []
    pages = [
        p for p in site.root.glob(site.pattern)
        if not (_SKIPPED_PARTS & set(p.parts)) and p.is_file() and p.stat().st_size >= MIN_PAGE_BYTES
    ]
    return sorted(pages)


def pick_pages(count: int, seed: int, sites: tuple[Site, ...] = SITES) -> dict[str, list[Path]]:
    """About ``count`` pages spread over the sites by weight, shuffled by ``seed``.

    The caller splits each site's list into references and negatives, so
    negatives are unseen pages of the same sites.
    """
    picked: dict[str, list[Path]] = {}
    available = [s for s in sites if site_pages(s)]
    total_weight = sum(s.weight for s in available) or 1.0
    for site in available:
        pages = site_pages(site)
        random.Random(f"{seed}:{site.name}").shuffle(pages)
        wanted = max(2, round(count * site.weight / total_weight))
        picked[site.name] = pages[:wanted]
    return picked


def photo_files() -> list[Path]:
    """One large landscape picture per wallpaper family, sorted.

    Wallpaper packages ship a theme in several variants (``Joy``,
    ``JoyInksplat``, ``JoyLockScreen``): they are near-copies whose label
    (same or different?) is debatable, so one member per family is kept.
    """
    chosen: dict[str, Path] = {}
    for root in PHOTO_ROOTS:
        if not root.is_dir():
            continue
        for theme in sorted(p for p in root.iterdir() if p.is_dir()):
            best = _largest_landscape(theme)
            family = _FAMILY_SUFFIX.sub("", theme.name).lower()
            if best is not None and family not in chosen:
                chosen[family] = best
    return [chosen[k] for k in sorted(chosen)]


def _largest_landscape(theme: Path) -> Path | None:
    best, best_area = None, 0
    for path in sorted(theme.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or path.name == "screenshot.png":
            continue
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError:
            continue
        if width >= height and width * height > best_area and width >= 1024:
            best, best_area = path, width * height
    return best
