"""Headless Chromium for the page tests: Playwright drives Debian's own Chromium (/usr/bin/chromium, installed by
`make test`); nothing is downloaded.

Screenshots refresh the committed ones in docs/screens only when asked (SEALTRAIL_UPDATE_SCREENSHOTS=1), so a plain
test run leaves the checkout clean; otherwise they go to a temporary folder and are still taken.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENS = (
    Path(__file__).resolve().parents[1] / "docs" / "screens"
    if os.environ.get("SEALTRAIL_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="sealtrail-screens-"))
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's Browser), closed afterwards; fails the test when not installed."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (make test installs the Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()
