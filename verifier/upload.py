"""The public upload check: ``/kiem-tra`` (a plain form, no JavaScript) and ``POST /api/v1/verify`` (JSON), for a
signed PDF or signed XML told apart by content. Nothing is fetched from the network; the upload is refused (413) as
soon as it passes the size limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from registry.records import DocumentRecord
from verifier.pdf import MAX_PDF_BYTES
from verifier.ratelimit import RateLimiter
from verifier.status import VERDICT_TEXT
from verifier.web import SECURITY_HEADERS, TEMPLATES

UPLOAD_CHUNK = 1024 * 1024
Check = Callable[[bytes], tuple[Any, str, DocumentRecord | None]]  # report, "pdf" | "xml", the register's record


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The uploaded file, read in chunks and refused (413) as soon as it passes ``limit`` bytes."""
    data = bytearray()
    while chunk := await file.read(UPLOAD_CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            mb = limit // (1024 * 1024)
            raise HTTPException(413, f"Tệp quá lớn (tối đa {mb} MB) / The file is too large ({mb} MB at most)")
    return bytes(data)


def make_upload_router(full_check: Check, limiter: RateLimiter, responses: dict[int | str, Any]) -> APIRouter:
    """``full_check``: signatures, then the register and the log, fail-closed (``verifier.checking.check_upload``)."""
    router = APIRouter()

    @router.post("/api/v1/verify", tags=["verification"], dependencies=[Depends(limiter)], responses=responses)
    async def verify_upload(file: UploadFile) -> dict[str, Any]:
        """Check an uploaded signed PDF or signed XML (told apart by content). Nothing is fetched from the network."""
        data = await read_upload(file, MAX_PDF_BYTES)
        report, fmt, record = await run_in_threadpool(full_check, data)
        out: dict[str, Any] = {**report.to_json(), "format": fmt}
        if record is not None:
            out["document"] = {"id": record.id, "kind": record.kind, "status": record.status}
            if record.translation_of:  # a translation: its standing (in the reasons) follows this original's
                out["document"]["translation_of"] = record.translation_of
        return out

    @router.get("/kiem-tra", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> HTMLResponse:
        """The upload-and-check page: a plain form, no JavaScript."""
        return HTMLResponse(TEMPLATES.get_template("upload.html.j2").render(report=None), headers=SECURITY_HEADERS)

    @router.post("/kiem-tra", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(limiter)])
    async def upload_check(file: UploadFile) -> HTMLResponse:
        data = await read_upload(file, MAX_PDF_BYTES)
        report, fmt, _record = await run_in_threadpool(full_check, data)
        verdict_vi, verdict_en = VERDICT_TEXT[report.verdict]
        html = TEMPLATES.get_template("upload.html.j2").render(
            report=report,
            verdict_vi=verdict_vi,
            verdict_en=verdict_en,
            filename=(file.filename or "")[:120],
            fmt=fmt,
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    return router
