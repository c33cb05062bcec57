"""Render real HTML pages with headless Chromium, as a screenshot service or a sandbox would.

One page load serves several screenshots (another window size, a scroll
offset, an injected banner, a changed heading): the page is laid out again
by the browser for each, which is what makes these variants realistic; only
the page load is shared, to keep the full set's build time in minutes.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright. As root
it needs ``--no-sandbox``; every flag below keeps it off the network.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from engine.errors import QuaidError
from engine.evaluation import page_edits

CHROMIUM = os.environ.get("QUAID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)
LOAD_TIMEOUT_MS = 20_000
CAPTURE_ATTEMPTS = 4  # a transient capture failure is retried (see Renderer.screenshot_png)
CAPTURE_RETRY_MS = 250
FULL_PAGE_MAX_HEIGHT = 6_000  # CSS pixels: where a full-page capture of an endless page stops
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}  # an iPhone 12-15 in CSS pixels
PHONE_USER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")

# Phishing kits and injected notices: a bar pushed on top of the page, or a fixed overlay.
_TOP_BANNER_JS = """([text, colour, height]) => {
  const bar = document.createElement('div');
  bar.dataset.quaidInjected = '1';
  bar.textContent = text;
  bar.style.cssText = `display:block;width:100%;box-sizing:border-box;height:${height}px;` +
    `line-height:${height}px;background:${colour};color:#fff;font:bold 16px sans-serif;` +
    'text-align:center;margin:0;padding:0 12px;';
  document.body.insertBefore(bar, document.body.firstChild);
}"""
_COOKIE_BANNER_JS = """([text, colour, height]) => {
  const bar = document.createElement('div');
  bar.dataset.quaidInjected = '1';
  bar.style.cssText = `position:fixed;left:0;right:0;bottom:0;height:${height}px;z-index:99999;` +
    `background:${colour};color:#fff;font:15px sans-serif;display:flex;align-items:center;` +
    'justify-content:space-between;padding:0 24px;box-sizing:border-box;';
  const span = document.createElement('span'); span.textContent = text;
  const button = document.createElement('button'); button.textContent = 'Accept';
  button.style.cssText = 'font:bold 15px sans-serif;padding:8px 22px;background:#fff;border:0;';
  bar.appendChild(span); bar.appendChild(button); document.body.appendChild(bar);
}"""
_HEADING_JS = """(text) => {
  const h = document.querySelector('h1') || document.querySelector('h2');
  if (!h) return false;
  h.dataset.quaidOriginal = h.innerHTML; h.textContent = text; return true;
}"""
_SCROLL_JS = """(offset) => {
  const room = document.scrollingElement.scrollHeight - window.innerHeight;
  const y = Math.min(offset, Math.max(room, 0));
  window.scrollTo(0, y); return y;
}"""


class RenderError(QuaidError):
    """Chromium could not load or capture a page."""


class Renderer:
    """A headless Chromium with one tab; use :func:`open_renderer` to start and stop it."""

    def __init__(self, page) -> None:
        self._page = page
        self._cdp = page.context.new_cdp_session(page)
        self._user_agent = str(page.evaluate("navigator.userAgent"))
        self._view = (1280, 720)
        self.resize(*self._view)

    def load(self, path: Path, width: int, height: int) -> None:
        """Open a local HTML file at a window size; scripts run, the network is unused."""
        self.resize(width, height)
        self._goto(path)

    def _goto(self, path: Path) -> None:
        try:
            self._page.goto(path.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
        except Exception as exc:  # Playwright raises its own Error / TimeoutError types
            raise RenderError(f"cannot load {path}: {exc}") from None

    def resize(self, width: int, height: int) -> None:
        """Change the window size; the browser lays the page out again."""
        self._emulate({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _emulate(self, metrics: dict) -> None:
        # Every window change goes through this one DevTools session: Playwright's own viewport setting
        # lives in another session, and Chromium then lays out at one size and captures at the other.
        self._cdp.send("Emulation.setDeviceMetricsOverride", metrics)
        self._view = (metrics["width"], metrics["height"])

    def screenshot_png(self, width: int | None = None, height: int | None = None) -> bytes:
        """The visible window as PNG bytes, after re-laying the page out at a new size if given.

        Uses the DevTools ``Page.captureScreenshot`` call with ``optimizeForSpeed``
        (faster PNG encoding than Playwright's own screenshot, same pixels).
        """
        if width and height:
            self.resize(width, height)
        return self._capture({})

    def full_page_png(self, max_height: int = FULL_PAGE_MAX_HEIGHT) -> bytes:
        """The whole page at the window's width, as Lookyloo and AIL's crawler store it (to max_height)."""
        metrics = self._cdp.send("Page.getLayoutMetrics")
        content = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = self._view
        height = max(height, min(int(content["height"]), max_height))
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        return self._capture({"captureBeyondViewport": True, "clip": clip})

    def hidpi_png(self, scale: float = 2.0) -> bytes:
        """The window as a HiDPI screen shows it: same layout, ``scale`` device pixels per CSS pixel."""
        width, height = self._view
        self._emulate({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})
        try:
            return self._capture({})
        finally:
            self.resize(width, height)

    def mobile_png(self, path: Path) -> bytes:
        """``path`` loaded again as a phone shows it: 390 CSS pixels wide, device scale 3, a phone's UA.

        The page is reloaded so that its scripts see the phone; the window and
        user agent are the desktop's again afterwards.
        """
        width, height = self._view
        self._cdp.send("Emulation.setUserAgentOverride", {"userAgent": PHONE_USER_AGENT})
        self._cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        self._emulate(PHONE)
        try:
            self._goto(path)
            return self._capture({})
        finally:
            self._cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": False})
            self._cdp.send("Emulation.setUserAgentOverride", {"userAgent": self._user_agent})
            self.resize(width, height)

    def _capture(self, params: dict) -> bytes:
        attempt = 1
        while True:
            try:
                answer = self._cdp.send("Page.captureScreenshot",
                                        {"format": "png", "optimizeForSpeed": True, **params})
                return base64.b64decode(answer["data"])
            except Exception as exc:  # Playwright's Error
                # Chromium answers "Unable to capture screenshot" while the compositor has no frame
                # yet (seen once in CI on a loaded machine): wait for one and try again.
                if attempt == CAPTURE_ATTEMPTS:
                    raise RenderError(f"cannot capture the page: {exc}") from None
                self._page.wait_for_timeout(CAPTURE_RETRY_MS * attempt)
                attempt += 1

    def screenshot(self, width: int | None = None, height: int | None = None) -> Image.Image:
        """The visible window as an RGB picture (see :meth:`screenshot_png`)."""
        return Image.open(io.BytesIO(self.screenshot_png(width, height))).convert("RGB")

    def scroll(self, offset: int) -> int:
        """Scroll down by up to ``offset`` pixels; returns how far the page could scroll."""
        return int(self._page.evaluate(_SCROLL_JS, offset))

    def top_banner(self, text: str, colour: str, height: int) -> None:
        self._page.evaluate(_TOP_BANNER_JS, [text, colour, height])

    def cookie_banner(self, text: str, colour: str, height: int) -> None:
        self._page.evaluate(_COOKIE_BANNER_JS, [text, colour, height])

    def change_heading(self, text: str) -> bool:
        """Replace the page's main heading; False when the page has none."""
        return bool(self._page.evaluate(_HEADING_JS, text))

    def consent_modal(self, style: str, title: str, text: str, dim: float) -> None:
        """A cookie-consent dialog centred over the page, dimmed by a backdrop of opacity ``dim``."""
        self._page.evaluate(page_edits.CONSENT_MODAL, [style, title, text, dim])

    def replace_title_and_summary(self, title: str, paragraphs: list[str]) -> int:
        """Put another page's title and first paragraphs in; the number of elements replaced (0: none)."""
        return int(self._page.evaluate(page_edits.REPLACE_TITLE_AND_SUMMARY, [title, paragraphs]))

    def break_images(self) -> int:
        """Make every picture of the page fail to load; the number of pictures it had."""
        return int(self._page.evaluate(page_edits.BREAK_IMAGES))

    def undo(self) -> None:
        """Remove injected banners, restore the heading, scroll back to the top."""
        self._page.evaluate(page_edits.UNDO)


@contextmanager
def open_renderer() -> Iterator[Renderer]:
    """Start Chromium in a fresh profile folder, yield a :class:`Renderer`, stop it."""
    if not Path(CHROMIUM).exists():
        raise RenderError(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set QUAID_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RenderError("the playwright Python package is needed to render pages") from None
    profile = tempfile.mkdtemp(prefix="quaid-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS),
                device_scale_factor=1, offline=True,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                yield Renderer(page)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
