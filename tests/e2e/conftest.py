"""Headless Chromium for the end-to-end tests of the staff app.

The Playwright sync API runs an event loop in the test thread, which makes Django think the ORM is called from async
code; the tests only touch the ORM between browser steps, so the async-safety check is switched off here.
Chromium is Debian's (no ``playwright install``, no downloads); set DANGOL_CHROMIUM to use another binary.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import pytest  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

CHROMIUM = os.environ.get("DANGOL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# A counter tablet or a phone: the staff app is designed mobile first.
MOBILE_360 = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
SHOTS_FOR_THE_LEAD = Path("/tmp/dangol-shots")
DEFAULT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set DANGOL_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """new_page(**context_options) -> a page in a fresh context (own cookies), 360 px mobile unless told otherwise.

    Uncaught JavaScript errors of any page fail the test."""
    contexts, js_errors = [], []

    def make(**options):
        context = browser.new_context(**{**MOBILE_360, "locale": "en-US", **options})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: js_errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def screenshot(tmp_path):
    """screenshot(page, name): a full-page PNG in tmp_path, also copied to /tmp/dangol-shots/ for a human to look at."""

    def take(page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        try:
            SHOTS_FOR_THE_LEAD.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SHOTS_FOR_THE_LEAD / path.name)
        except OSError:
            pass  # a convenience copy only
        return path

    return take
