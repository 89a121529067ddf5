"""The public pages in headless Chromium on a phone-sized screen: the QR page and the upload page.

Playwright drives Debian's own Chromium (/usr/bin/chromium, installed by `make test`); nothing is downloaded.
Screenshots of the pages as a phone shows them are committed in docs/screens/; refresh them with
`SEALTRAIL_UPDATE_SCREENSHOTS=1 uv run pytest tests/e2e/test_browser.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import SCREENS, chromium
from tests.e2e.conftest import documents

pytestmark = pytest.mark.slow
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def page() -> Iterator[object]:
    with chromium() as browser:
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, java_script_enabled=False)
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        pg = context.new_page()
        pg.requests = requests  # type: ignore[attr-defined]
        yield pg


def _fits_the_phone(page) -> None:  # type: ignore[no-untyped-def]
    """Nothing sticks out sideways: every card, field and form ends inside the phone's width."""
    for element in page.locator("main section, main dd, main form, main input").all():
        box = element.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, box


def test_qr_page_on_a_phone_with_details_after_the_date_of_birth(demo: dict[str, object], page) -> None:  # type: ignore[no-untyped-def]
    doc = next(d for d in documents(demo) if d["kind"] == "diploma")
    page.goto(str(doc["url"]))
    assert page.locator("h1").first.inner_text() == "HỢP LỆ"
    assert str(doc["id"]) in page.content()
    _fits_the_phone(page)
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "qr-page.png"), full_page=True)

    page.fill("#dob", "01/01/1990")
    page.click("button[type=submit]")
    assert "không khớp" in page.content()

    import schemas

    holder = schemas.parse_document(schemas.load_sample("diploma_thpt")).holder
    page.fill("#dob", holder.birth_date.strftime("%d/%m/%Y"))
    page.click("button[type=submit]")
    assert holder.full_name in page.inner_text("main")
    page.screenshot(path=str(SCREENS / "qr-page-details.png"), full_page=True)
    base = str(demo["base"])
    assert all(url.startswith(base) for url in page.requests), page.requests  # no CDN, nothing external


def test_upload_page_checks_a_file_and_says_why_a_bad_one_fails(demo: dict[str, object], page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = Path(str(demo["out"]))
    doc = next(d for d in documents(demo) if d["kind"] == "transcript")
    page.goto(f"{demo['base']}/kiem-tra")
    _fits_the_phone(page)
    page.set_input_files("#file", str(out / f"{doc['id']}.pdf"))
    page.click("button[type=submit]")
    assert page.locator("h1").first.inner_text() == "HỢP LỆ"
    assert "Phạm Thị Mai" in page.inner_text("main")  # the homeroom teacher's signature is listed
    page.screenshot(path=str(SCREENS / "upload-valid.png"), full_page=True)

    data = bytearray((out / f"{doc['id']}.pdf").read_bytes())
    data[len(data) // 3] ^= 1
    bad = tmp_path / "sua-diem.pdf"
    bad.write_bytes(bytes(data))
    page.set_input_files("#file", str(bad))
    page.click("button[type=submit]")
    assert page.locator("h1").first.inner_text() == "KHÔNG HỢP LỆ"
    page.screenshot(path=str(SCREENS / "upload-invalid.png"), full_page=True)
