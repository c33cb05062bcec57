"""Realistic screenshots for the template case, generated (never downloaded).

Pages come from two sources that share a template across many pages, as real
phishing targets and documentation sites do:

* ``template_page(seed)``: small HTML pages written here (header, menu,
  sidebar, article, footer), one site, content drawn from a seeded word list;
* local HTML documentation installed by Debian (Python, Sphinx, Django,
  PostgreSQL, Git manuals): real sites with sidebars and menus that fill much
  of the screen, the hard case for global hashes.

Headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright)
renders them. Modified copies are produced the way they occur in the wild: the
browser itself re-renders with an injected banner, a changed heading, a cookie
bar, a scroll offset or another window width; Pillow adds a browser/sandbox
frame, recompression, down-scaling, a cropped border and colour changes.

``python -m tests.screenshots OUT`` writes a set to a folder for inspection.
"""

from __future__ import annotations

import io
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOC_ROOTS = {
    "python": ("/usr/share/doc/python3.11-doc/html/library", "*.html"),
    "sphinx": ("/usr/share/doc/sphinx-doc/html/usage", "**/*.html"),
    "django": ("/usr/share/doc/python-django-doc/html/ref", "**/*.html"),
    "postgres": ("/usr/share/doc/postgresql-doc-15/html", "sql-*.html"),
    "git": ("/usr/share/doc/git-doc", "git-*.html"),
}
WIDTH, HEIGHT = 1280, 800  # the viewport of the reference screenshots

_WORDS = (
    "account security payment invoice delivery update customer service verify login password "
    "order shipping tracking refund support contact privacy policy terms mobile banking card "
    "transfer balance statement online access device notice settings profile message business "
    "personal savings loan mortgage insurance branch offer rates report fraud alert help center"
).split()

_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{margin:0;font-family:DejaVu Sans,sans-serif;color:#222;background:#fff}}
header{{background:#12355b;color:#fff;padding:14px 40px;display:flex;align-items:center;gap:30px}}
.logo{{font-size:26px;font-weight:bold;letter-spacing:1px}} .logo span{{color:#f6b400}}
nav a{{color:#dbe7f5;margin-right:22px;text-decoration:none;font-size:15px}}
.wrap{{display:flex;max-width:1180px;margin:0 auto}}
aside{{width:230px;padding:20px;background:#f1f4f8;min-height:900px;font-size:14px}}
aside a{{display:block;color:#12355b;margin:7px 0}}
main{{flex:1;padding:10px 36px;font-size:15px;line-height:1.5}}
h1{{color:#12355b;font-size:28px}} .box{{border:1px solid #ccd;padding:12px;background:#fafbfd}}
footer{{background:#e8ebef;padding:18px 40px;font-size:13px;color:#555}}
</style></head><body>
<header><div class="logo">Secure<span>Bank</span></div><nav>{nav}</nav></header>
<div class="wrap"><aside>{side}</aside><main><h1>{title}</h1>{body}</main></div>
<footer>(c) SecureBank plc - privacy - terms - accessibility - cookies - contact</footer>
</body></html>"""


def template_page(seed: int) -> str:
    """One page of the synthetic bank site: same header, menu, sidebar and footer; seeded content."""
    rng = random.Random(seed)
    fixed = random.Random(0)
    words = lambda n, r=rng: " ".join(r.choice(_WORDS) for _ in range(n))  # noqa: E731
    nav = "".join(f"<a href='#'>{w.title()}</a>" for w in fixed.sample(_WORDS, 6))
    side = "".join(f"<a href='#'>{words(2, fixed).title()}</a>" for _ in range(14))
    parts = []
    for _ in range(rng.randint(3, 5)):
        kind = rng.random()
        if kind < 0.2:
            parts.append(f"<div class='box'><b>{words(3).title()}</b><br>{words(rng.randint(15, 30))}</div>")
        elif kind < 0.4:
            parts.append("<ul>" + "".join(f"<li>{words(rng.randint(4, 9))}</li>" for _ in range(4)) + "</ul>")
        elif kind < 0.55:
            parts.append(f"<h2>{words(3).title()}</h2>")
        parts.append(f"<p>{words(rng.randint(30, 70)).capitalize()}.</p>")
    return _TEMPLATE.format(title=words(4).title(), nav=nav, side=side, body="".join(parts))


def doc_pages(site: str, count: int, seed: int = 1) -> list[str]:
    """``count`` file:// URLs of one installed documentation site, picked reproducibly."""
    root, pattern = DOC_ROOTS[site]
    files = sorted(p for p in Path(root).glob(pattern) if p.stat().st_size > 6000)
    random.Random(seed).shuffle(files)
    return [p.as_uri() for p in files[:count]]


_BANNER_JS = """() => { const d = document.createElement('div');
 d.style.cssText = 'background:#c0001a;color:#fff;font:bold 17px sans-serif;padding:16px 30px;';
 d.textContent = 'Security alert: your account has been suspended. Verify your identity within 24 hours.';
 document.body.insertBefore(d, document.body.firstChild); }"""
_COOKIE_JS = """() => { const d = document.createElement('div');
 d.style.cssText = 'position:fixed;left:0;right:0;bottom:0;background:#333;color:#eee;'
  + 'font:14px sans-serif;padding:14px 30px;z-index:99999';
 d.textContent = 'We use cookies to improve your experience. Continue to accept. [Accept]';
 document.body.appendChild(d); }"""
_HEADING_JS = """() => { const h = document.querySelector('h1') || document.querySelector('h2');
 if (h) h.textContent = 'Confirm your payment details now'; }"""


class Renderer:
    """One headless Chromium; ``shot`` renders a URL (or HTML text) with optional in-page edits."""

    def __init__(self, playwright) -> None:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir) of its own.
        self._browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def close(self) -> None:
        self._browser.close()

    def shot(self, url: str, *, width: int = WIDTH, height: int = HEIGHT, scroll: int = 0,
             banner: bool = False, cookie: bool = False, heading: bool = False) -> Image.Image:
        page = self._browser.new_page(viewport={"width": width, "height": height})
        try:
            page.goto(url, wait_until="load")
            for wanted, script in ((banner, _BANNER_JS), (cookie, _COOKIE_JS), (heading, _HEADING_JS)):
                if wanted:
                    page.evaluate(script)
            if scroll:
                page.evaluate(f"() => window.scrollTo(0, {scroll})")
            page.wait_for_timeout(30)
            return Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        finally:
            page.close()


@contextmanager
def renderer() -> Iterator[Renderer]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        r = Renderer(playwright)
        try:
            yield r
        finally:
            r.close()


def write_template_site(folder: Path, count: int) -> list[str]:
    """Write ``count`` pages of the synthetic site to ``folder``; return their file:// URLs."""
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for seed in range(count):
        path = folder / f"page{seed}.html"
        path.write_text(template_page(seed + 1))
        urls.append(path.as_uri())
    return urls


# ---- Pillow modifications ------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def recompress(image: Image.Image, quality: int = 60) -> Image.Image:
    return Image.open(io.BytesIO(encode(image, "JPEG", quality=quality))).convert("RGB")


def downscale(image: Image.Image, factor: float = 0.6) -> Image.Image:
    size = (round(image.width * factor), round(image.height * factor))
    return recompress(image.resize(size, Image.Resampling.LANCZOS), 80)


def crop_border(image: Image.Image, share: float = 0.06) -> Image.Image:
    dx, dy = round(image.width * share), round(image.height * share)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def recolour(image: Image.Image) -> Image.Image:
    image = ImageEnhance.Color(image).enhance(0.4)
    return ImageEnhance.Brightness(ImageEnhance.Contrast(image).enhance(0.85)).enhance(1.08)


def browser_frame(image: Image.Image, url: str = "https://secure-login.example.com/verify") -> Image.Image:
    """A sandbox-style capture: tab strip, URL bar and window border around the page, down-scaled."""
    top, side = 86, 8
    framed = Image.new("RGB", (image.width + 2 * side, image.height + top + side), (222, 225, 230))
    draw = ImageDraw.Draw(framed)
    draw.rectangle((side + 10, 6, side + 250, 36), fill=(255, 255, 255))
    draw.text((side + 22, 14), "Sign in - Secure account", fill=(30, 30, 30))
    draw.rounded_rectangle((side + 90, 46, framed.width - 120, 76), 12, fill=(255, 255, 255))
    draw.text((side + 110, 55), url, fill=(60, 60, 60))
    for i in range(3):
        draw.ellipse((side + 10 + 24 * i, 52, side + 26 + 24 * i, 68), outline=(90, 90, 90), width=2)
    framed.paste(image, (side, top))
    return downscale(framed, 0.8)


def mirror(image: Image.Image) -> Image.Image:
    return ImageOps.mirror(image)


def modified_copies(r: Renderer, url: str, original: Image.Image) -> dict[str, Image.Image]:
    """The copies an analyst must see accepted for ``url`` (whose plain screenshot is ``original``)."""
    return {
        "recompressed": recompress(original, 55),
        "downscaled": downscale(original, 0.6),
        "cropped": crop_border(original),
        "recoloured": recolour(original),
        "frame": browser_frame(original),
        "banner": r.shot(url, banner=True),
        "heading": r.shot(url, heading=True),
        "cookie": r.shot(url, cookie=True),
        "scrolled": r.shot(url, scroll=240),
        "banner+frame": browser_frame(r.shot(url, banner=True)),
        "narrower": r.shot(url, width=1100),
        "wider": r.shot(url, width=1440, height=900),
    }


def main(out: str) -> None:
    folder = Path(out)
    urls = write_template_site(folder / "site", 2) + doc_pages("python", 1) + doc_pages("django", 1)
    with renderer() as r:
        for i, url in enumerate(urls):
            original = r.shot(url)
            original.save(folder / f"{i}-original.png")
            for name, image in modified_copies(r, url, original).items():
                image.save(folder / f"{i}-{name}.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/quaid-screenshots")
