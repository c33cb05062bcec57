"""Where the evaluation pictures come from: documentation sites, web-application templates, wallpapers.

Why documentation sites: each one is a real website whose pages share one
template (header, sidebar, menus, fonts), exactly the situation that makes
global hashes call two different pages of one site "the same picture". They
are installed by Debian packages (``scripts/install-system-packages.sh``), so
the set can be rebuilt offline on any machine. Web applications are HTML
admin and website templates from npm (``scripts/install-web-templates.sh``
unpacks them under :data:`TEMPLATES`): their login, register and
password-reset pages look alike across applications, and the pages of one
application share everything but a form. Each site or template is one
``site`` of the manifest, so a set can be split by site.

Held out on purpose, never read here: the HTML documentation of rustup,
nodejs, npm, valgrind and libxslt, the mate-backgrounds /
gnome-backgrounds photos (``/usr/share/backgrounds``), and the npm
templates admin-lte, startbootstrap-sb-admin, -sb-admin-2,
-modern-business, -clean-blog, -agency and -landing-page; an independent
evaluation uses them.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MIN_PAGE_BYTES = 3_000  # bytes; smaller files are redirects or empty stubs
SIBLING_LENGTH_GAP = 0.15  # share of its length by which a page's HTML may differ from a close sibling's
TEMPLATES = Path(os.environ.get("QUAID_TEMPLATES", Path.home() / ".cache" / "quaid" / "templates"))


@dataclass(frozen=True)
class Site:
    """One website: a folder and the globs (``|``-separated) of its HTML pages.

    ``families`` globs the pages that are template siblings of each other (the
    SQL command pages of PostgreSQL, git's command man pages, one function per
    page of an API reference): pages differing by a few lines, which the set
    uses as near-identical negatives. ``first`` is a regular expression on the
    page's file name for pages picked before the others (the login, register,
    password-reset and dashboard pages of a web application).
    """

    name: str
    root: Path
    pattern: str
    weight: float  # share of the pages picked from this site
    families: str = ""
    first: str = ""
    app: bool = False  # a web-application template rather than a documentation site


_DOC = Path("/usr/share/doc")
_GTK_DOC = Path("/usr/share/gtk-doc/html")
_AUTH_PAGES = r"(log-?in|sign-?in|sign-?up|register|forgot|reset|password|lock|index|dashboard)"
SITES: tuple[Site, ...] = (
    Site("python", _DOC / "python3.11/html", "**/*.html", 0.20, families="library/*.html"),
    Site("postgresql", _DOC / "postgresql-doc-15/html", "*.html", 0.20, families="sql-*.html"),
    Site("apache", _DOC / "apache2-doc/manual/en", "**/*.html", 0.16, families="mod/mod_*.html"),
    Site("django", _DOC / "python-django-doc/html", "**/*.html", 0.18, families="ref/**/*.html"),
    Site("git", _DOC / "git-doc", "*.html", 0.14, families="git-*.html"),
    Site("sphinx", _DOC / "sphinx-doc/html", "**/*.html", 0.08),
    Site("debian-reference", Path("/usr/share/debian-reference"), "*.en.html", 0.04),
    Site("cmake", _DOC / "cmake-doc/html", "**/*.html", 0.20,
         families="command/*.html|variable/*.html|prop_tgt/*.html|module/*.html"),
    Site("glib", _GTK_DOC, "glib/*.html|gio/*.html|gobject/*.html", 0.12,
         families="gio/G*.html|glib/glib-*.html"),
    Site("gtk", _GTK_DOC, "gtk3/*.html|gdk3/*.html", 0.12, families="gtk3/Gtk*.html"),
    Site("sqlalchemy", _DOC / "python-sqlalchemy-doc/html", "**/*.html", 0.06, families="orm/*.html"),
    Site("flask", _DOC / "python-flask-doc/html", "**/*.html", 0.02),
    Site("celery", _DOC / "python-celery-doc/html", "**/*.html", 0.08,
         families="reference/celery.*.html"),
    Site("pillow", _DOC / "python-pil-doc/html", "**/*.html", 0.04, families="reference/*.html"),
    Site("tornado", _DOC / "python-tornado-doc/html", "**/*.html", 0.03),
    Site("scipy", _DOC / "python-scipy-doc/html", "**/*.html", 0.30,
         families="reference/generated/scipy.*.html"),
    Site("sympy", _DOC / "python-sympy-doc/html", "**/*.html", 0.15, families="modules/**/*.html"),
    Site("app-adminbsb", TEMPLATES / "adminbsb-materialdesign", "index.html|pages/**/*.html", 0.024,
         first=_AUTH_PAGES, app=True),
    Site("app-argon", TEMPLATES / "creative-tim-official-argon-dashboard", "pages/*.html", 0.008,
         first=_AUTH_PAGES, app=True),
    Site("app-backstrap", TEMPLATES / "digitallyhappy-backstrap", "dist/**/*.html", 0.02,
         first=_AUTH_PAGES, app=True),
    Site("app-equation", TEMPLATES / "equation-admin-template", "ltr/*.html", 0.06, first=_AUTH_PAGES,
         app=True),
    Site("app-material", TEMPLATES / "material-dashboard", "pages/*.html", 0.008, first=_AUTH_PAGES,
         app=True),
    Site("app-sneat", TEMPLATES / "sneat-bootstrap-html-admin-template-free", "html/*.html", 0.024,
         first=_AUTH_PAGES, app=True),
    Site("app-soft-ui", TEMPLATES / "soft-ui-dashboard", "pages/*.html", 0.008, first=_AUTH_PAGES,
         app=True),
    Site("app-stisla", TEMPLATES / "stisla", "*.html", 0.04, first=_AUTH_PAGES, app=True),
    Site("app-tabler", TEMPLATES / "tabler-ui", "dist/*.html", 0.02, first=_AUTH_PAGES, app=True),
) + tuple(
    Site(f"landing-{name}", TEMPLATES / f"startbootstrap-{name}", "dist/index.html", 0.001, app=True)
    for name in ("freelancer", "creative", "grayscale", "resume", "new-age")
)
PHOTO_ROOTS: tuple[Path, ...] = (Path("/usr/share/wallpapers"),)
_SKIPPED_PARTS = {"_sources", "_static", "_downloads", "_images", "_modules", "search.html", "genindex.html",
                  "node_modules", "plugins", "vendors", "vendor", "documentation", "docs"}
_FAMILY_SUFFIX = re.compile(r"(_?wallpaper|LockScreen|WithLogo|Inksplat)$")


def _globbed(root: Path, patterns: str) -> set[Path]:
    return {p for pattern in patterns.split("|") if pattern for p in root.glob(pattern)}


def site_pages(site: Site) -> list[Path]:
    """Every real page of ``site``, sorted (so a seed picks the same pages on every machine)."""
    if not site.root.is_dir():
        return []
    pages = [
        p for p in _globbed(site.root, site.pattern)
        if not (_SKIPPED_PARTS & set(p.relative_to(site.root).parts)) and p.is_file()
        and (site.app or p.stat().st_size >= MIN_PAGE_BYTES)
    ]
    return sorted(pages)


def shuffled_pages(site: Site, seed: int) -> list[Path]:
    """The site's pages in a seeded order; pages matching ``site.first`` come first."""
    pages = site_pages(site)
    random.Random(f"{seed}:{site.name}").shuffle(pages)
    if site.first:
        wanted = re.compile(site.first, re.IGNORECASE)
        pages.sort(key=lambda p: not wanted.search(p.stem))
    return pages


def sibling_pairs(site: Site, seed: int) -> list[tuple[Path, Path]]:
    """Disjoint pairs of template siblings, neighbours in name order, closest in length first.

    Neighbours in name order are the closest siblings a site has: the man
    pages of ``git-cherry`` and ``git-cherry-pick``, PostgreSQL's
    ``DROP ROLE`` and ``DROP ROUTINE``, two methods of one class. Those of
    about the same length (within :data:`SIBLING_LENGTH_GAP`) come first, in
    a seeded order: one template with as much content differs by a few lines.
    """
    if not site.families or not site.root.is_dir():
        return []
    real = set(site_pages(site))
    pages = sorted(p for p in _globbed(site.root, site.families) if p in real)
    length = {p: p.stat().st_size for p in pages}
    candidates = list(zip(pages, pages[1:], strict=False))
    random.Random(f"{seed}:{site.name}:siblings").shuffle(candidates)
    candidates.sort(key=lambda pair: abs(length[pair[0]] - length[pair[1]]) > SIBLING_LENGTH_GAP * max(
        length[pair[0]], length[pair[1]]))
    taken: set[Path] = set()
    pairs = []
    for first, second in candidates:
        if first not in taken and second not in taken:
            taken.update((first, second))
            pairs.append((first, second))
    return pairs


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
