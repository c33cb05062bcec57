"""Debian's Chromium driven by Playwright, for the web-UI and browser-attack tests.

Every flag keeps the browser off the network (the machine has none) and quiet at start;
``launched`` starts one browser for a test module, ``checked_page`` gives a fresh page that
fails the test if the page raised a JavaScript error.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000


@contextmanager
def launched(*extra_args: str) -> Iterator:
    """One headless Chromium with :data:`ARGS` plus ``extra_args``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args])
        yield browser
        browser.close()


@contextmanager
def checked_page(browser, **context_options) -> Iterator:
    """A page in a new context; the test fails if the page raised an uncaught error."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()
    assert errors == []
