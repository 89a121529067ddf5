"""The QR page's privacy gate and the no-framing rule in headless Chromium (JavaScript off, as a phone might):
the date-of-birth form locks after five wrong dates, the details code still opens the details, and another site
cannot show the verdict page inside a frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import schemas
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from tests.browser import SCREENS, chromium
from tests.conftest import free_port
from tests.verifier.conftest import installation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[IssuedDocument], str]]:
    from sealtrail.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with installation(tmp_path_factory.mktemp("gates-browser"), public_base_url=base) as (dep, docs):
        server = uvicorn.Server(
            uvicorn.Config(create_app(dep.settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        try:
            yield dep, docs, base
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def test_the_date_form_locks_and_the_details_code_still_opens_the_details(
    served: tuple[Deployment, list[IssuedDocument], str],
) -> None:
    from sealtrail.secretkeys import derived_key
    from verifier.gate import details_code

    dep, docs, base = served
    doc = docs[0]
    holder = schemas.parse_document(schemas.load_sample("diploma_thpt")).holder
    with chromium() as browser:
        page = browser.new_context(java_script_enabled=False).new_page()
        for day in range(1, 7):
            page.goto(f"{base}/v/{doc.token}")
            page.fill("#dob", f"{day:02d}/01/1990")
            page.click("form:has(#dob) button")
        assert page.is_visible("#locked") and "thử lại sau" in page.inner_text("#locked")
        page.fill("#dob", holder.birth_date.strftime("%d/%m/%Y"))  # the right date, during the lock
        page.click("form:has(#dob) button")
        assert holder.full_name not in page.content()
        page.fill("#code", details_code(derived_key(dep, "details-code"), doc.doc_id))
        page.click("form:has(#code) button")
        assert holder.full_name in page.inner_text("body")
        page.screenshot(path=str(SCREENS / "qr-details-code.png"), full_page=True)


def test_another_site_cannot_frame_the_verdict_page(
    served: tuple[Deployment, list[IssuedDocument], str], tmp_path: Path
) -> None:
    import http.server
    import socketserver

    _dep, docs, base = served
    (tmp_path / "index.html").write_text(
        f'<html><body><h1>evil</h1><iframe id="f" src="{base}/v/{docs[0].token}"></iframe></body></html>'
    )
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    with socketserver.TCPServer(("127.0.0.2", 0), handler) as evil:
        port = evil.server_address[1]
        thread = threading.Thread(target=evil.serve_forever, daemon=True)
        thread.start()
        try:
            with chromium() as browser:
                page = browser.new_context().new_page()
                page.goto(f"http://127.0.0.2:{port}/index.html")
                page.wait_for_timeout(1500)
                (frame,) = [f for f in page.frames if f != page.main_frame]
                shown = (
                    frame.evaluate("document.body ? document.body.innerText : ''") if frame.url.startswith(base) else ""
                )
                assert "HỢP LỆ" not in shown  # the verdict never renders inside another site's frame
                direct = browser.new_context().new_page()
                direct.goto(f"{base}/v/{docs[0].token}")
                assert "HỢP LỆ" in direct.inner_text("body")  # the control: the page itself shows it
        finally:
            evil.shutdown()
