"""Browser-made copies of one reference page: what a screenshot service, a sandbox or a phone makes of it.

Where to start: :func:`browser_variants`. From one page load the browser lays
the page out again for each copy: other window sizes and widths (text
reflow), a scroll, an injected banner or heading (phishing kits), a
cookie-consent dialog over the dimmed page, a full-page capture (what
Lookyloo and AIL's crawler store), a HiDPI capture, the page in a browser on
a sandbox's 1920 x 1080 desktop, the page with its pictures gone (a copy
that hot-links them), and last, because it reloads the page, a phone's
render (reported apart: ``mobile-render``).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from engine.evaluation import modifications
from engine.evaluation.page_edits import CONSENT_STYLES
from engine.evaluation.render import Renderer

WINDOW = (1280, 800)  # pixels: the reference window size
OTHER_WINDOWS = ((1024, 768), (1366, 768), (1440, 900), (1920, 1080), (800, 1000))
WIDTHS = (1024, 1920)  # pixels: range of the window widths that reflow the text
MOBILE_WIDTH = 585  # pixels: a phone's 1170-pixel screenshot as chat apps pass it on (halved)
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
CONSENT_TEXTS = (
    ("We value your privacy", "We and our partners use cookies to store and access information on your "
     "device, to personalise content and ads and to analyse our traffic."),
    ("Cookie settings", "This website uses cookies. Some are necessary for it to work; others help us "
     "understand how you use it. You can accept all or choose which ones to allow."),
    ("Your choices", "Click 'Accept all' to agree to the storing of cookies on your device to enhance "
     "site navigation and analyse site usage."),
)

Variant = tuple[str, "Image.Image | bytes", dict]  # kind, picture (PNG bytes from the browser), parameters


def browser_variants(renderer: Renderer, page: Path, rng: random.Random) -> Iterator[Variant]:
    """The browser's copies of the loaded ``page``, each with the parameters it drew.

    The kinds of earlier sets come first and draw from ``rng`` in the same
    order as before, so their pictures are unchanged for a seed.
    """
    for number, (w, h) in enumerate(rng.sample(OTHER_WINDOWS, 2)):
        yield "window-size", renderer.screenshot_png(w, h), {"width": w, "height": h, "number": number}
    renderer.resize(*WINDOW)
    offset = renderer.scroll(rng.randint(120, 450))
    if offset >= 60:
        yield "scroll", renderer.screenshot_png(), {"offset": offset}
    renderer.undo()
    yield from _injected(renderer, rng)
    width = rng.randint(*WIDTHS)
    yield "window-width", renderer.screenshot_png(width, WINDOW[1]), {"width": width, "height": WINDOW[1]}
    renderer.resize(*WINDOW)
    yield _consent(renderer, rng)
    yield "full-page", renderer.full_page_png(), {"width": WINDOW[0]}
    yield "hidpi", renderer.hidpi_png(2.0), {"device_scale_factor": 2}
    yield _desktop(renderer, rng)
    renderer.resize(*WINDOW)
    if renderer.break_images():
        yield "images-missing", renderer.screenshot_png(), {}
    renderer.undo()
    yield mobile(renderer, page)


def mobile(renderer: Renderer, page: Path) -> Variant:
    """A phone's render of ``page``, halved as chat apps pass screenshots on; reloads the page."""
    phone = Image.open(io.BytesIO(renderer.mobile_png(page))).convert("RGB")
    scaled = phone.resize((MOBILE_WIDTH, round(phone.height * MOBILE_WIDTH / phone.width)),
                          Image.Resampling.LANCZOS)
    return "mobile-render", scaled, {"css_width": 390, "device_scale_factor": 3, "width": MOBILE_WIDTH}


def _injected(renderer: Renderer, rng: random.Random) -> Iterator[Variant]:
    text, colour = rng.choice(BANNER_TEXTS), rng.choice(BANNER_COLOURS)
    if rng.random() < 0.5:
        height = rng.randint(36, 64)
        renderer.top_banner(text, colour, height)
        yield "banner", renderer.screenshot_png(), {"style": "top", "height": height, "text": text}
    else:
        height = rng.randint(56, 90)
        renderer.cookie_banner(text, colour, height)
        yield "banner", renderer.screenshot_png(), {"style": "overlay", "height": height, "text": text}
    renderer.undo()
    heading = rng.choice(HEADINGS)
    if renderer.change_heading(heading):
        yield "heading", renderer.screenshot_png(), {"text": heading}
    renderer.undo()


def _consent(renderer: Renderer, rng: random.Random) -> Variant:
    style = rng.choice(CONSENT_STYLES)
    title, text = rng.choice(CONSENT_TEXTS)
    dim = round(rng.uniform(0.35, 0.65), 2)
    renderer.consent_modal(style, title, text, dim)
    shot = renderer.screenshot_png()
    renderer.undo()
    return "consent-modal", shot, {"style": style, "dim": dim, "title": title}


def _desktop(renderer: Renderer, rng: random.Random) -> Variant:
    (width, height), maximised = modifications.desktop_window_size(rng)
    page = Image.open(io.BytesIO(renderer.screenshot_png(width, height))).convert("RGB")
    image, params = modifications.desktop_screenshot(page, rng, maximised)
    return "desktop", image, params


def synthetic_sibling(renderer: Renderer, site_pages: list[Path], page: Path,
                      rng: random.Random) -> tuple[bytes, Path] | None:
    """The loaded page with another page's title and first paragraphs: a sibling sharing everything else.

    Returns the screenshot and the page the text came from, or None when no
    other page of the site has a title and paragraphs to lend.
    """
    donors = [p for p in site_pages if p != page]
    rng.shuffle(donors)
    for donor in donors[:8]:
        title, paragraphs = title_and_summary(donor)
        if title and paragraphs and renderer.replace_title_and_summary(title, paragraphs) > 1:
            shot = renderer.screenshot_png()
            renderer.undo()
            return shot, donor
        renderer.undo()
    return None


def title_and_summary(path: Path) -> tuple[str, list[str]]:
    """A page's first heading and its first two non-empty paragraphs, as plain text."""
    reader = _TitleReader()
    try:
        reader.feed(path.read_text(errors="replace")[:400_000])
    except Exception:  # a malformed page lends nothing
        return "", []
    return reader.title.strip(), [p.strip() for p in reader.paragraphs if p.strip()][:2]


class _TitleReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title, self.paragraphs, self._in = "", [], None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("h1", "h2") and not self.title and self._in is None:
            self._in = "title"
        elif tag in ("p", "dd") and self.title and len(self.paragraphs) < 2 and self._in is None:
            self._in = "paragraph"
            self.paragraphs.append("")

    def handle_endtag(self, tag: str) -> None:
        if (self._in == "title" and tag in ("h1", "h2")) or (self._in == "paragraph" and tag in ("p", "dd")):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "paragraph":
            self.paragraphs[-1] += data
