"""Bounded work on untrusted uploads: crafted PDFs that make the parser loop or allocate answer "indeterminate: too
complex to check here" and their worker is stopped (never a hang, never a 500); genuine documents are valid through
the same isolated path; expensive steps run only when they can change the verdict.

Assertions are on outcomes (the verdict, the cause the pool recorded, the worker process gone), never on elapsed
time: each crafted file needs far more than the limit the test sets (minutes of CPU or gigabytes of memory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sealtrail.deployment import Deployment
from sealtrail.web.app import create_app
from signer.issue import IssuedDocument
from tests.verifier.hostile_pdf import big_xref, deep_nesting, many_signatures
from verifier.checking import check_upload, trust_of
from verifier.isolation import CheckPool, Limits, Stopped

Installed = tuple[Deployment, list[IssuedDocument]]


def gone(pid: int) -> bool:
    """The process has ended (no longer exists, or only a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.fixture(scope="module")
def slow_file(setup: Installed) -> bytes:
    """A genuine diploma's signed XML with its first signature slot repeated 230 times (4.7 MB, under the 5 MB XML
    limit): each copy is verified against the whole document, some 10–20 s of CPU in all. (The strict PDF reader
    now refuses at once the PDF loops this test first used, e.g. 1,000 revisions: pdfstructure's bounds.)"""
    return many_signatures(setup[1][0].xml, 230)


def test_a_verifier_loop_is_stopped_at_the_cpu_limit(setup: Installed, slow_file: bytes) -> None:
    dep, docs = setup
    pool = CheckPool(Limits(cpu_seconds=2, wall_seconds=600, workers=1))
    try:
        (before,) = pool.worker_pids()
        checked = check_upload(dep, slow_file, pool=pool)
        assert checked.report.verdict == "indeterminate"
        assert checked.report.reasons[0].code == "TOO_COMPLEX"
        assert "quá phức tạp để kiểm tra tại đây" in checked.report.reasons[0].vi
        assert pool.stopped == {"cpu": 1} and pool.last_stopped_pid == before and gone(before)
        # The same pool (a fresh worker in place of the stopped one) still says valid to a genuine document.
        (after,) = pool.worker_pids()
        assert after != before
        genuine = check_upload(dep, docs[0].pdf, pool=pool)
        assert genuine.report.verdict == "valid", genuine.report.reasons
        assert genuine.report.to_json()["etsi"]["indication"] == "TOTAL_PASSED"
    finally:
        pool.close()


def test_an_allocation_bomb_is_stopped_at_the_memory_limit(setup: Installed) -> None:
    dep, docs = setup
    bomb = big_xref(docs[0].pdf, 1_000_000)  # 20 MB on disk, several hundred MB once parsed
    pool = CheckPool(Limits(cpu_seconds=300, memory_bytes=256 * 1024 * 1024, wall_seconds=600, workers=1))
    try:
        (before,) = pool.worker_pids()
        report = check_upload(dep, bomb, pool=pool).report
        assert report.verdict == "indeterminate" and report.reasons[0].code == "TOO_COMPLEX"
        assert pool.stopped == {"memory": 1} and gone(before)
        assert check_upload(dep, docs[0].xml, pool=pool).report.verdict == "valid"
    finally:
        pool.close()


def test_the_wall_clock_guard_stops_a_check_the_cpu_limit_would_still_allow(setup: Installed, slow_file: bytes) -> None:
    dep, _docs = setup
    pool = CheckPool(Limits(cpu_seconds=3600, wall_seconds=1, workers=1))
    try:
        (before,) = pool.worker_pids()
        report = check_upload(dep, slow_file, pool=pool).report
        assert report.verdict == "indeterminate" and report.reasons[0].code == "TOO_COMPLEX"
        assert pool.stopped == {"wall": 1} and gone(before)
    finally:
        pool.close()


def test_a_cancelled_check_stops_its_worker(setup: Installed, slow_file: bytes) -> None:
    dep, _docs = setup
    pool = CheckPool(Limits(cpu_seconds=3600, wall_seconds=3600, workers=1))
    calls = 0

    def cancelled() -> bool:  # the client "hangs up" once the worker has been given the file
        nonlocal calls
        calls += 1
        return calls > 3

    try:
        (before,) = pool.worker_pids()
        with pytest.raises(Stopped) as stopped:
            pool.check(slow_file, trust_of(dep), cancelled=cancelled)
        assert stopped.value.cause == "cancelled" and pool.stopped == {"cancelled": 1} and gone(before)
    finally:
        pool.close()


def test_deep_nesting_is_never_valid_and_never_an_error(setup: Installed) -> None:
    dep, docs = setup
    client = TestClient(create_app(dep.settings))
    nested = deep_nesting(docs[0].pdf, 200_000)
    response = client.post("/api/v1/verify", files={"file": ("nested.pdf", nested)})
    assert response.status_code == 200
    assert response.json()["verdict"] in ("invalid", "indeterminate")


def test_the_public_api_answers_too_complex_not_500(setup: Installed, slow_file: bytes) -> None:
    """POST /api/v1/verify, the upload page and the ZIP bulk check, with a 2 s CPU limit from settings."""
    import io
    import zipfile

    dep, docs = setup
    settings = dep.settings.model_copy(update={"verify_cpu_seconds": 2, "verify_wall_seconds": 600})
    client = TestClient(create_app(settings))
    response = client.post("/api/v1/verify", files={"file": ("slow.xml", slow_file)})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "indeterminate" and body["reasons"][0]["code"] == "TOO_COMPLEX"
    assert body["etsi"] == {"indication": "INDETERMINATE", "sub_indication": "GENERIC", "reason_code": "TOO_COMPLEX"}

    page = client.post("/kiem-tra", files={"file": ("slow.xml", slow_file)})
    assert page.status_code == 200 and "quá phức tạp để kiểm tra tại đây" in page.text

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("slow.xml", slow_file)
        archive.writestr("genuine.pdf", docs[0].pdf)
    bulk = client.post("/api/v1/verify/bulk", files={"file": ("many.zip", buffer.getvalue())})
    assert bulk.status_code == 200
    verdicts = {item["file"]: (item["verdict"], item["reasons"][:1]) for item in bulk.json()["items"]}
    assert verdicts["slow.xml"][0] == "indeterminate" and verdicts["slow.xml"][1][0]["code"] == "TOO_COMPLEX"
    assert verdicts["genuine.pdf"] == ("valid", [])


def test_page_text_is_read_only_when_it_can_change_the_verdict(
    setup: Installed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pdftotext (the costliest step) runs only after the signatures are known not to be invalid, and not for a
    file the register knows to be exactly one it issued."""
    import verifier.pagetext

    dep, docs = setup
    calls: list[int] = []
    real = verifier.pagetext.page_text

    def counting(pdf: bytes) -> str:
        calls.append(len(pdf))
        return real(pdf)

    monkeypatch.setattr(verifier.pagetext, "page_text", counting)
    assert check_upload(dep, docs[0].pdf).report.verdict == "valid"
    assert calls == []  # exactly the issued file: nothing to compare
    tampered = bytearray(docs[0].pdf)
    at = tampered.index(b"/Type /Page") + 1  # inside the signed bytes
    tampered[at : at + 4] = b"TYPE"
    assert check_upload(dep, bytes(tampered)).report.verdict == "invalid"
    assert calls == []  # invalid: nothing after the verdict
    assert dep.pdf_verifier.verify(docs[0].pdf).verdict == "valid"  # offline, not known as issued: compared
    assert calls == [len(docs[0].pdf)]


def test_workers_are_prestarted_and_reused(setup: Installed) -> None:
    dep, docs = setup
    pool = CheckPool(Limits(workers=2))
    try:
        pids = set(pool.worker_pids())
        assert len(pids) == 2 and all(not gone(pid) for pid in pids) and os.getpid() not in pids
        for _ in range(3):
            assert check_upload(dep, docs[0].pdf, pool=pool).report.verdict == "valid"
        assert set(pool.worker_pids()) == pids and pool.stopped == {}
    finally:
        pool.close()
    assert all(gone(pid) for pid in pids)


def test_a_report_crosses_the_process_boundary_whatever_a_library_left_in_it() -> None:
    """pyHanko leaves its own str subclasses and ASN.1 values in places; the worker sends plain values only."""
    import pickle
    from datetime import UTC, datetime

    from verifier.isolation import _plain
    from verifier.pdf import PdfReport, Reason, SignatureReport

    class LibraryText(str):  # defined in a function: pickle cannot find it by name
        pass

    when = datetime(2026, 1, 2, tzinfo=UTC)
    signature = SignatureReport(
        LibraryText("sig_seal"), LibraryText("Trường"), "", when, None, True, True, False, False, "ENTIRE_FILE", None,
        [Reason("NO_CERTIFICATE_CHAIN_FOUND", LibraryText("chưa tin cậy"), "untrusted")],
    )  # fmt: skip
    report = PdfReport("indeterminate", list(signature.reasons), [signature], LibraryText("PDF/A-3B"),
                       [{"name": LibraryText("a.xml"), "odd": object()}])  # fmt: skip
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(report)
    back = pickle.loads(pickle.dumps(_plain(report)))  # noqa: S301  (our own bytes)
    assert back.signatures[0].field_name == "sig_seal" and type(back.signatures[0].field_name) is str
    assert back.signatures[0].signing_time == when and back.reasons[0].vi == "chưa tin cậy"
    assert back.pdfa == "PDF/A-3B" and back.attachments[0]["name"] == "a.xml"
    assert back.to_json()["signatures"][0]["indication"] == "indeterminate"
