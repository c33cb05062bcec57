"""Uninformative pages, generated (never downloaded): what floods a picture store with false matches.

Kinds, each with seeded variations (window size, colours, wording):

* ``blank``: an empty page, white or any flat colour (a capture taken before the page drew);
* ``browser-error``: a browser's "This site can't be reached" page (an icon, a heading, a line
  of explanation, an error code and a button), as Chromium shows it;
* ``server-error``: a web server's bare error page (nginx's "502 Bad Gateway", Apache's
  "Not Found" with its address line);
* ``challenge``: a bot challenge ("Just a moment...", "Checking your browser", a spinner) or a
  captcha box with its "I'm not a robot" check box;
* ``parked``: a parked domain ("This domain may be for sale", a few related links);
* ``default-server``: a web server's default page (Apache's "It works!", nginx's "Welcome to nginx!");
* ``placeholder``: a capture tool's placeholder picture (a grey frame with a picture icon and
  "No screenshot available"), drawn with Pillow, and a loading spinner on a flat background.

HTML kinds are rendered by the project's Chromium renderer (:mod:`engine.evaluation.render`);
the Pillow kinds need no browser. ``python -m tests.noise_pages OUT`` writes a set to a folder.
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

WINDOWS = ((1280, 800), (1366, 768), (1920, 1080), (1024, 768), (800, 600), (390, 844))
BACKGROUNDS = ("#ffffff", "#f8f9fa", "#202124", "#eeeeee", "#fafafa")


def _blank(rng: random.Random) -> str:
    colour = rng.choice(("#ffffff", "#000000", "#f1f3f4", "#1e1e1e", "#fdfdfd", "#e8eaed"))
    return f"<html><body style='margin:0;background:{colour}'></body></html>"


def _browser_error(rng: random.Random) -> str:
    host = rng.choice(("login-secure-update.com", "paypa1-verify.net", "mail.example.org", "cdn.acme.io"))
    code = rng.choice(("ERR_NAME_NOT_RESOLVED", "ERR_CONNECTION_REFUSED", "ERR_CONNECTION_TIMED_OUT",
                       "ERR_SSL_PROTOCOL_ERROR"))
    dark = rng.random() < 0.3
    bg, fg = ("#202124", "#e8eaed") if dark else ("#ffffff", "#5f6368")
    title = "#e8eaed" if dark else "#202124"
    return f"""<html><body style="margin:0;background:{bg};color:{fg};font:15px sans-serif">
<div style="max-width:600px;margin:14vh auto 0;padding:0 24px">
<div style="width:72px;height:72px;border:6px solid {fg};border-radius:8px;margin-bottom:40px"></div>
<h1 style="font-size:1.6em;font-weight:normal;color:{title}">This site can't be reached</h1>
<p>Check if there is a typo in <b>{host}</b>.</p>
<p style="font-size:0.85em">{code}</p>
<button style="background:#1a73e8;color:#fff;border:0;border-radius:4px;padding:8px 16px;float:right">
Reload</button></div></body></html>"""


def _server_error(rng: random.Random) -> str:
    if rng.random() < 0.5:
        status = rng.choice(("502 Bad Gateway", "404 Not Found", "403 Forbidden",
                             "503 Service Temporarily Unavailable"))
        return (f"<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center>"
                f"<hr><center>nginx/1.{rng.randint(14, 27)}.{rng.randint(0, 9)}</center></body></html>")
    path = rng.choice(("/wp-login.php", "/admin/", "/secure/index.html", "/.env"))
    return (f"<html><body><h1>Not Found</h1><p>The requested URL {path} was not found on this server.</p>"
            f"<hr><address>Apache/2.4.{rng.randint(40, 62)} (Debian) Server at example.com Port 80</address>"
            "</body></html>")


def _challenge(rng: random.Random) -> str:
    if rng.random() < 0.5:
        host = rng.choice(("shop.example.com", "secure-login.net", "portal.acme.io"))
        bg = rng.choice(("#ffffff", "#222222"))
        fg = "#222" if bg == "#ffffff" else "#ddd"
        heading = rng.choice(("Just a moment...", "Checking your browser before accessing"))
        return f"""<html><body style="margin:0;background:{bg};color:{fg};font:16px sans-serif">
<div style="max-width:60rem;margin:8rem auto;padding:0 1.5rem">
<h1 style="font-size:2.5rem;font-weight:500">{host}</h1>
<h2 style="font-size:1.5rem;font-weight:500">{heading}</h2>
<div style="width:36px;height:36px;border:4px solid #ccc;border-top-color:#f38020;border-radius:50%"></div>
<p>{host} needs to review the security of your connection before proceeding.</p></div></body></html>"""
    return """<html><body style="margin:0;background:#fff;font:14px sans-serif">
<div style="width:300px;margin:30vh auto;border:1px solid #d3d3d3;border-radius:3px;background:#f9f9f9;
box-shadow:0 0 4px 1px rgba(0,0,0,.08);padding:18px 12px;display:flex;align-items:center">
<div style="width:24px;height:24px;border:2px solid #c1c1c1;border-radius:2px;background:#fff"></div>
<span style="margin-left:12px;color:#000">I'm not a robot</span>
<span style="margin-left:auto;color:#555;font-size:10px">reCAPTCHA</span></div></body></html>"""


def _parked(rng: random.Random) -> str:
    domain = rng.choice(("secure-paypal-login.com", "bank-0f-america.net", "micros0ft-support.org"))
    links = "".join(f"<p style='margin:14px 0'><a style='color:#1a0dab' href='#'>{word}</a></p>"
                    for word in rng.sample(("Online Banking", "Credit Cards", "Free Email", "Web Hosting",
                                            "Cheap Flights", "Loans"), 3))
    return f"""<html><body style="margin:0;background:#fff;font:15px sans-serif;color:#333">
<div style="text-align:center;margin-top:12vh"><h1 style="font-weight:normal;font-size:28px">{domain}</h1>
<p style="color:#777">This domain may be for sale!</p><div style="margin-top:30px">{links}</div></div>
</body></html>"""


def _default_server(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "<html><body><h1>It works!</h1></body></html>"
    return """<html><head><style>body{width:35em;margin:0 auto;font-family:Tahoma,Verdana,Arial,sans-serif}
</style></head><body><h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully
installed and working. Further configuration is required.</p><p>For online documentation and support please
refer to <a href="#">nginx.org</a>.<br/>Commercial support is available at <a href="#">nginx.com</a>.</p>
<p><em>Thank you for using nginx.</em></p></body></html>"""


def sign_in_form() -> str:
    """Not noise: a phishing kit's bare sign-in form (a logo, a heading, one field, a link, a button on
    white), as sparse as an error page; the detector must never flag it."""
    return """<html><body style="margin:0;background:#fff;font:15px sans-serif;color:#1b1b1b">
<div style="width:360px;margin:18vh auto 0;padding:32px;border:1px solid #dadce0;border-radius:8px">
<div style="font:bold 24px sans-serif;color:#0067b8">Contoso</div>
<h1 style="font-size:22px;font-weight:600">Sign in</h1>
<input style="width:100%;padding:8px;border:0;border-bottom:1px solid #666"
 placeholder="Email, phone, or Skype">
<p style="font-size:13px;color:#0067b8">Can't access your account?</p>
<button style="float:right;background:#0067b8;color:#fff;border:0;padding:8px 28px">Next</button>
<div style="clear:both"></div></div></body></html>"""


HTML_KINDS = {"blank": _blank, "browser-error": _browser_error, "server-error": _server_error,
              "challenge": _challenge, "parked": _parked, "default-server": _default_server}


def placeholder(rng: random.Random) -> Image.Image:
    """A capture tool's placeholder: a grey frame, a picture icon, one line of text."""
    width, height = rng.choice(WINDOWS)
    image = Image.new("RGB", (width, height), rng.choice(("#eeeeee", "#f5f5f5", "#e0e0e0")))
    draw = ImageDraw.Draw(image)
    cx, cy = width // 2, height // 2
    draw.rectangle((cx - 40, cy - 60, cx + 40, cy), outline="#9e9e9e", width=4)
    mountain = ((cx - 32, cy - 8), (cx - 8, cy - 36), (cx + 10, cy - 16), (cx + 32, cy - 8))
    draw.polygon(mountain, fill="#9e9e9e")
    draw.text((cx - 70, cy + 20), "No screenshot available", fill="#757575")
    return image


def spinner(rng: random.Random) -> Image.Image:
    """A page still loading: a flat background and a spinner ring."""
    width, height = rng.choice(WINDOWS)
    background = rng.choice(BACKGROUNDS)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    cx, cy, r = width // 2, height // 2, 24
    draw.arc((cx - r, cy - r, cx + r, cy + r), 0, 270, fill=rng.choice(("#1a73e8", "#888888")), width=5)
    return image


PILLOW_KINDS = {"placeholder": placeholder, "spinner": spinner}


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def pillow_pages(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` pictures of each Pillow kind, as ``(kind, png bytes)``."""
    for kind, draw in PILLOW_KINDS.items():
        for n in range(count):
            yield kind, png(draw(random.Random(f"{seed}-{kind}-{n}")))


def rendered_pages(count: int, seed: int = 0,
                   kinds: tuple[str, ...] = tuple(HTML_KINDS)) -> Iterator[tuple[str, bytes]]:
    """``count`` screenshots of each HTML kind, rendered by Chromium at seeded window sizes."""
    from engine.evaluation.render import open_renderer

    with tempfile.TemporaryDirectory(prefix="quaid-noise-") as folder, open_renderer() as renderer:
        page = Path(folder) / "page.html"
        for kind in kinds:
            for n in range(count):
                rng = random.Random(f"{seed}-{kind}-{n}")
                page.write_text(HTML_KINDS[kind](rng), encoding="utf-8")
                renderer.load(page, *rng.choice(WINDOWS))
                yield kind, renderer.screenshot_png()


def rendered(html: str, sizes: tuple[tuple[int, int], ...]) -> Iterator[bytes]:
    """``html`` rendered by Chromium at each window size."""
    from engine.evaluation.render import open_renderer

    with tempfile.TemporaryDirectory(prefix="quaid-noise-") as folder, open_renderer() as renderer:
        page = Path(folder) / "page.html"
        page.write_text(html, encoding="utf-8")
        for size in sizes:
            renderer.load(page, *size)
            yield renderer.screenshot_png()


def main(out: str, count: int = 4) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    pages = [*rendered_pages(count), *pillow_pages(count)]
    for n, (kind, data) in enumerate(pages):
        (folder / f"{kind}-{n:03d}.png").write_bytes(data)
    print(f"{len(pages)} pages written to {folder}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)
