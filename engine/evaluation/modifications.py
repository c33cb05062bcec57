"""Real-world modifications a copy of a picture goes through, drawn with Pillow.

Screenshots (besides the browser re-renders of :mod:`engine.evaluation.render`):
a browser window frame around the page, a sandbox desktop (the page in a
window, with a title bar and a task bar, as Cuckoo / ANY.RUN / CAPE
screenshots look), JPEG recompression with down-scaling (chat apps, MISP
thumbnails), a cropped border, colour changes. Photos: crops, mirroring,
small rotations, watermarks, aspect-ratio changes, recompression, colour.

Every function takes the picture and a seeded :class:`random.Random` and
returns the modified picture and the parameters it drew, which go into the
manifest so each variant can be explained and rebuilt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Modification = Callable[[Image.Image, random.Random], tuple[Image.Image, dict]]
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
_URL_HOSTS = ("docs-portal.example", "secure-login.example.net", "support.example.org", "10.0.2.15")
_BRANDS = ("© PhotoStock", "Sample · do not copy", "shared via chat", "© 2024 News Agency", "PREVIEW")


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A TrueType font at ``size`` pixels (DejaVu or Liberation), else Pillow's built-in one."""
    for name in _FONT_FILES:
        if Path(name).exists():
            return ImageFont.truetype(name, size)
    return ImageFont.load_default(size=size)


def recompress(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Down-scale (50-90 %) and mark for JPEG saving at quality 45-85 (the writer encodes)."""
    scale = rng.uniform(0.5, 0.9)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = image.resize(size, Image.Resampling.BILINEAR)
    return out, {"scale": round(scale, 3), "jpeg_quality": rng.randint(45, 85)}


def crop_border(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Cut 2-8 % off two to four sides, as a careless region screenshot does."""
    sides = rng.sample(["left", "top", "right", "bottom"], rng.randint(2, 4))
    cut = {s: (rng.uniform(0.02, 0.08) if s in sides else 0.0) for s in ("left", "top", "right", "bottom")}
    box = (round(image.width * cut["left"]), round(image.height * cut["top"]),
           round(image.width * (1 - cut["right"])), round(image.height * (1 - cut["bottom"])))
    return image.crop(box), {k: round(v, 3) for k, v in cut.items()}


def colour(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """One colour change: greyscale, brightness, contrast, saturation, or a hue rotation."""
    kind = rng.choice(["grey", "brightness", "contrast", "saturation", "hue"])
    if kind == "grey":
        return ImageOps.grayscale(image).convert("RGB"), {"change": kind}
    if kind == "hue":
        shift = rng.choice([-1, 1]) * rng.randint(15, 60)
        h, s, v = image.convert("HSV").split()
        h = h.point(lambda x: (x + shift) % 256)
        return Image.merge("HSV", (h, s, v)).convert("RGB"), {"change": kind, "shift": shift}
    factor = rng.choice([rng.uniform(0.7, 0.88), rng.uniform(1.12, 1.35)])
    enhancer = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                "saturation": ImageEnhance.Color}[kind]
    return enhancer(image).enhance(factor), {"change": kind, "factor": round(factor, 3)}


def browser_frame(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """A browser window's tab strip and address bar on top; the page loses that much at the bottom.

    The window keeps its size (the frame takes room from the page), as in a
    screenshot of a whole browser window.
    """
    dark = rng.random() < 0.3
    height = rng.randint(72, 96)
    bg, fg, field = ((53, 54, 58), (230, 230, 230), (32, 33, 36)) if dark else \
        ((222, 225, 230), (40, 40, 40), (255, 255, 255))
    out = Image.new("RGB", image.size, bg)
    out.paste(image.crop((0, 0, image.width, image.height - height)), (0, height))
    draw = ImageDraw.Draw(out)
    tab_h = height // 2 - 2
    draw.rectangle((8, 6, 8 + min(240, image.width // 3), tab_h + 4), fill=field)
    draw.text((20, 10), "Documentation", fill=fg, font=font(13))
    for i, x in enumerate((14, 40, 66)):
        draw.ellipse((x, tab_h + 14, x + 14, tab_h + 28), outline=fg, width=2 if i else 1)
    url = f"https://{rng.choice(_URL_HOSTS)}/doc/{rng.randint(100, 999)}/index.html"
    draw.rounded_rectangle((96, tab_h + 8, image.width - 60, height - 8), radius=12, fill=field)
    draw.text((116, tab_h + 12), url, fill=fg, font=font(14))
    draw.line((0, height - 1, image.width, height - 1), fill=(160, 160, 160))
    return out, {"frame_height": height, "dark": dark, "url": url}


def sandbox_frame(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """The page in a smaller window on a desktop with a task bar, as sandbox reports show it."""
    screen = image.size
    desktop = tuple(rng.randint(0, 90) for _ in range(3))
    out = Image.new("RGB", screen, desktop)
    scale = rng.uniform(0.72, 0.9)
    title_h, taskbar_h = 28, 36
    win_w = round(screen[0] * scale)
    win_h = min(round(screen[1] * scale), screen[1] - taskbar_h - title_h - 8)
    x = rng.randint(0, screen[0] - win_w)
    y = rng.randint(0, screen[1] - taskbar_h - title_h - win_h)
    page = image.resize((win_w, round(image.height * win_w / image.width)), Image.Resampling.LANCZOS)
    out.paste(page.crop((0, 0, win_w, win_h)), (x, y + title_h))
    draw = ImageDraw.Draw(out)
    draw.rectangle((x, y, x + win_w - 1, y + title_h - 1), fill=(0, 84, 153))
    draw.text((x + 10, y + 6), "Internet Explorer - sample.exe", fill=(255, 255, 255), font=font(13))
    for i in range(3):
        draw.rectangle((x + win_w - 30 * (i + 1), y + 4, x + win_w - 30 * i - 6, y + title_h - 5),
                       outline=(255, 255, 255))
    draw.rectangle((0, screen[1] - taskbar_h, screen[0], screen[1]), fill=(28, 28, 36))
    draw.rectangle((6, screen[1] - taskbar_h + 6, 70, screen[1] - 6), fill=(60, 120, 200))
    draw.text((screen[0] - 70, screen[1] - taskbar_h + 10), "10:42", fill=(230, 230, 230), font=font(13))
    return out, {"scale": round(scale, 3), "x": x, "y": y, "desktop": list(desktop)}


def photo_crop(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Keep 70-90 % of each side, anywhere in the picture (a re-framed copy)."""
    keep_w, keep_h = rng.uniform(0.7, 0.9), rng.uniform(0.7, 0.9)
    w, h = round(image.width * keep_w), round(image.height * keep_h)
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    return image.crop((x, y, x + w, y + h)), {"keep_w": round(keep_w, 3), "keep_h": round(keep_h, 3)}


def mirror(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Left-right mirror (the common flip of re-posted photos)."""
    return ImageOps.mirror(image), {}


def rotate(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Rotate by 2-8 degrees and crop to the largest centred box without empty corners."""
    angle = rng.choice([-1, 1]) * rng.uniform(2.0, 8.0)
    rotated = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    sine = abs(math.sin(math.radians(angle)))
    mx, my = math.ceil(image.height / 2 * sine) + 2, math.ceil(image.width / 2 * sine) + 2
    box = (mx, my, image.width - mx, image.height - my)
    return rotated.crop(box), {"angle": round(angle, 2)}


def watermark(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """A semi-transparent text watermark, in a corner or repeated across the picture."""
    text = rng.choice(_BRANDS)
    tiled = rng.random() < 0.4
    size = max(14, image.width // (24 if tiled else 16))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    alpha = rng.randint(90, 170)
    if tiled:
        for y in range(0, image.height, size * 4):
            for x in range((y // (size * 4)) % 2 * size * 3, image.width, size * 8):
                draw.text((x, y), text, fill=(255, 255, 255, alpha), font=font(size))
    else:
        x = rng.choice([size, image.width - size * len(text) * 6 // 10 - size])
        y = rng.choice([size, image.height - 2 * size])
        draw.text((max(0, x), max(0, y)), text, fill=(255, 255, 255, alpha), font=font(size))
    out = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    return out, {"text": text, "tiled": tiled, "alpha": alpha}


def aspect(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict]:
    """Stretch one axis by 15-40 % (a copy squeezed into another frame)."""
    factor = rng.uniform(1.15, 1.4)
    if rng.random() < 0.5:
        size, axis = (round(image.width * factor), image.height), "x"
    else:
        size, axis = (image.width, round(image.height * factor)), "y"
    return image.resize(size, Image.Resampling.BICUBIC), {"factor": round(factor, 3), "axis": axis}


SCREENSHOT_MODIFICATIONS: dict[str, Modification] = {
    "recompress": recompress,
    "crop": crop_border,
    "colour": colour,
    "browser-frame": browser_frame,
    "sandbox-frame": sandbox_frame,
}
PHOTO_MODIFICATIONS: dict[str, Modification] = {
    "recompress": recompress,
    "crop": photo_crop,
    "colour": colour,
    "mirror": mirror,
    "rotate": rotate,
    "watermark": watermark,
    "aspect": aspect,
}


DESKTOP = (1920, 1080)  # pixels: the sandbox's screen
DESKTOP_TASKBAR = 40  # pixels
DESKTOP_CHROME = 84  # pixels: title bar with tabs, and the address bar, above the page
SANDBOX_WIDTHS = (1024, 1280)  # pixels: what sandbox reports scale the screen down to


def desktop_window_size(rng: random.Random) -> tuple[tuple[int, int], bool]:
    """The browser's page area on the desktop: maximised, or a window of its own size; and which."""
    if rng.random() < 0.5:
        return (DESKTOP[0], DESKTOP[1] - DESKTOP_TASKBAR - DESKTOP_CHROME), True
    return (rng.randint(1100, 1600), rng.randint(640, 860)), False


def desktop_screenshot(page: Image.Image, rng: random.Random, maximised: bool) -> tuple[Image.Image, dict]:
    """``page`` (the browser's page area) in a browser window on a 1920 x 1080 desktop, scaled down.

    The desktop has a gradient wallpaper and a task bar; the window a title
    bar with a tab and an address bar. The whole screen is then scaled to
    1024 or 1280 pixels wide, as sandbox reports (CAPE, ANY.RUN, Joe Sandbox)
    show their screenshots.
    """
    top, bottom = (tuple(rng.randint(20, 200) for _ in range(3)) for _ in range(2))
    ramp = np.linspace(0.0, 1.0, DESKTOP[1])[:, None, None]
    wallpaper = (np.array(top) * (1 - ramp) + np.array(bottom) * ramp).astype(np.uint8)
    screen = Image.fromarray(np.repeat(wallpaper, DESKTOP[0], axis=1), "RGB")
    win_w, win_h = page.width, page.height + DESKTOP_CHROME
    x = 0 if maximised else rng.randint(0, DESKTOP[0] - win_w)
    y = 0 if maximised else rng.randint(0, DESKTOP[1] - DESKTOP_TASKBAR - win_h)
    draw = ImageDraw.Draw(screen)
    draw.rectangle((x, y, x + win_w - 1, y + DESKTOP_CHROME - 1), fill=(222, 225, 230))
    draw.rectangle((x + 8, y + 6, x + 8 + min(260, win_w // 3), y + 38), fill=(255, 255, 255))
    draw.text((x + 20, y + 14), "Sign in", fill=(40, 40, 40), font=font(13))
    url = f"https://{rng.choice(_URL_HOSTS)}/{rng.randint(100, 999)}/login"
    draw.rounded_rectangle((x + 96, y + 46, x + win_w - 60, y + 76), radius=12, fill=(255, 255, 255))
    draw.text((x + 116, y + 52), url, fill=(40, 40, 40), font=font(14))
    screen.paste(page, (x, y + DESKTOP_CHROME))
    draw.rectangle((0, DESKTOP[1] - DESKTOP_TASKBAR, DESKTOP[0], DESKTOP[1]), fill=(28, 28, 36))
    draw.rectangle((6, DESKTOP[1] - DESKTOP_TASKBAR + 6, 60, DESKTOP[1] - 6), fill=(60, 120, 200))
    clock = (DESKTOP[0] - 70, DESKTOP[1] - DESKTOP_TASKBAR + 12)
    draw.text(clock, "10:42", fill=(230, 230, 230), font=font(13))
    width = rng.choice(SANDBOX_WIDTHS)
    scaled = screen.resize((width, round(DESKTOP[1] * width / DESKTOP[0])), Image.Resampling.LANCZOS)
    return scaled, {"width": width, "maximised": maximised, "x": x, "y": y,
                    "page": [page.width, page.height], "url": url}
