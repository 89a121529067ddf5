"""The principal's batch approval and the student's certified copy in headless Chromium, JavaScript off.

Screenshots go to docs/screens/ only with SEALTRAIL_UPDATE_SCREENSHOTS=1 (like tests/e2e/test_browser.py).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import uvicorn
from sqlmodel import Session

import schemas
from accounts import service
from jobs import approval
from tests.accounts.conftest import (
    PASSWORD,
    SCHOOL_A,
    World,
    finish_batch,
    make_deployment,
    populate,
    staff_actor,
    teacher_signed,
)
from tests.browser import SCREENS, chromium
from tests.conftest import free_port
from workflow.states import WorkItem

pytestmark = pytest.mark.slow
DESKTOP = {"width": 1100, "height": 800}


@pytest.fixture
def served(tmp_path: Path, dev_pki: object, cheap_argon2: None) -> Iterator[tuple[World, str]]:
    """A real server on loopback (uvicorn in a thread) over a populated SQLite deployment."""
    from sealtrail.web.app import create_app

    port = free_port()
    dep = make_deployment(tmp_path, f"sqlite:///{tmp_path / 'st.db'}", dev_pki)
    dep.settings.public_base_url = f"http://127.0.0.1:{port}"
    secrets = populate(dep)
    app = create_app(dep.settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield World(dep, app, secrets), f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser_page() -> Iterator[object]:
    with chromium() as browser:
        context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
        yield context.new_page()


def _off_loop(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn`` on a thread of its own: signing uses asyncio.run, which cannot run on Playwright's event loop."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))
    thread.start()
    thread.join(timeout=300)
    assert out, "signing did not finish"
    return out[0]


def _wait_until_finished(page) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 300
    while "Đang ký" in page.inner_text("#batch-state"):
        assert time.monotonic() < deadline, "the batch did not finish"
        page.wait_for_timeout(1000)  # the page reloads itself (meta refresh)


def test_principal_approves_and_signs_a_whole_class_in_the_browser(served: tuple[World, str], browser_page) -> None:  # type: ignore[no-untyped-def]
    """The class was signed by its homeroom teacher; one pupil's data was changed afterwards behind the workflow's
    back. The principal approves the class: the batch job issues three, and refuses the changed one with what to do."""
    world, base = served
    page = browser_page
    klass = schemas.load_sample("class_9a1")
    extra = copy.deepcopy(klass[0])
    extra["holder"] |= {"personal_id": "001310099999", "given_name": "Minh", "middle_name": "Văn", "gender": 1}
    ids = _off_loop(teacher_signed, world, [*klass, extra])
    with Session(world.dep.engine) as session:  # edited after the teacher signed, not through the workflow
        row = session.get(WorkItem, ids[3])
        assert row is not None
        data = copy.deepcopy(row.data)
        data["years"][0]["sessions_absent"] = 12
        row.data = data
        session.add(row)
        session.commit()
    page.goto(f"{base}/can-bo/{SCHOOL_A}/hang-doi")
    assert page.url.endswith("/dang-nhap")  # not signed in yet
    page.fill("#username", "principal-a")
    page.fill("#password", PASSWORD)
    page.fill("#totp", pyotp.TOTP(world.totp["principal-a"]).now())
    page.click("button[type=submit]")
    assert "principal" in page.inner_text("main")
    page.goto(f"{base}/can-bo/{SCHOOL_A}/hang-doi?lop=9A1&nam=2024-2025")
    assert page.locator("td.state-teacher_signed").count() == 4
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "principal-queue.png"), full_page=True)
    page.click("#approve")
    assert "/lo-ky/" in page.url
    assert page.locator("progress").count() == 1 and "/ 4 hồ sơ" in page.inner_text("#batch-counts")
    if "Đang ký" in page.inner_text("#batch-state"):
        page.screenshot(path=str(SCREENS / "principal-batch-progress.png"), full_page=True)
    _wait_until_finished(page)
    assert page.inner_text("#batch-state").startswith("Đã ký xong, có 1 hồ sơ lỗi")
    assert page.locator("text=Đã cấp HB-").count() == 3
    failure = page.inner_text(f"#row-{ids[3]} .failure")
    assert "thay đổi sau khi GVCN ký" in failure and "trả lại" in failure.lower(), failure
    page.screenshot(path=str(SCREENS / "principal-batch-done.png"), full_page=True)
    page.goto(f"{base}/can-bo/{SCHOOL_A}/hang-doi?lop=9A1")
    assert page.locator("td.state-issued").count() == 3
    assert page.locator("td.state-teacher_signed").count() == 1  # back in the queue, with the reason
    assert "thay đổi sau khi GVCN ký" in page.inner_text("td.state-teacher_signed")


def test_student_requests_a_certified_copy_and_shares_it_in_the_browser(
    served: tuple[World, str], browser_page
) -> None:  # type: ignore[no-untyped-def]
    world, base = served
    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    ids = _off_loop(teacher_signed, world, schemas.load_sample("class_9a1")[:1])
    batch = approval.start_batch(ctx, None, staff_actor(world, "principal-a"), SCHOOL_A, ids)
    assert finish_batch(world, batch)["counts"]["issued"] == 1
    code = service.issue_student_code(world.dep.engine, "student-a", SCHOOL_A)
    page = browser_page
    page.goto(f"{base}/hoc-sinh/dang-nhap")
    page.fill("#code", code.lower())  # codes are forgiving about case
    page.click("button[type=submit]")
    assert page.url.endswith("/hoc-sinh")
    page.click("text=Xin bản sao điện tử")
    assert "Đã cấp bản sao BS-" in page.inner_text("main")
    assert page.locator("text=bản sao của HB-").count() == 1
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "student-certified-copy.png"), full_page=True)
    page.uncheck("input[value=school]")
    page.check("input[value=holder_name]")
    page.click("text=Tạo liên kết")
    link = page.inner_text("#new-link code")
    assert link.startswith(f"{base}/chia-se/")
    page.goto(link)
    assert "Nguyễn Thị Thu Hằng" in page.inner_text("main") and "Trường cấp" not in page.inner_text("main")
    page.screenshot(path=str(SCREENS / "student-share-link.png"), full_page=True)
