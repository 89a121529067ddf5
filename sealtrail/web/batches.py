"""The staff API's batch routes: follow a queued batch (counts, failures with reasons) and cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

import schemas
from jobs import batches as jobs
from sealtrail.deployment import Deployment

NOT_FOUND = "Không có lô này / no such batch"


def queue_documents(
    dep: Deployment, raw: list[Any], docs: list[schemas.Document], school_code: str, key_id: str
) -> dict[str, Any]:
    """Queue checked documents as one batch; the answer for a 202."""
    submitted = jobs.submit_batch(dep, list(zip(raw, docs, strict=True)), school_code=school_code, created_by=key_id)
    return {
        "batch": submitted.batch_id,
        "status_url": f"/api/v1/batches/{submitted.batch_id}",
        "page_url": f"/lo/{submitted.batch_id}",
        "documents": [{"seq": i, "id": doc_id} for i, doc_id in enumerate(submitted.doc_ids)],
    }


def add_batch_routes(router: APIRouter, dep: Deployment, school: Callable[..., str]) -> None:
    @router.get("/batches/{batch_id}")
    async def batch_status(batch_id: str, school_code: str = Depends(school)) -> dict[str, Any]:
        """A batch's progress: counts by state, every document's id and state, failures with their reasons."""
        progress = await run_in_threadpool(jobs.batch_progress, dep, batch_id, school_code)
        if progress is None:  # another school's batch looks exactly like a missing one
            raise HTTPException(404, NOT_FOUND)
        return progress

    @router.post("/batches/{batch_id}/cancel")
    async def batch_cancel(batch_id: str, school_code: str = Depends(school)) -> dict[str, Any]:
        """Cancel the documents not started yet; those already issued stay issued."""
        if await run_in_threadpool(jobs.batch_progress, dep, batch_id, school_code) is None:
            raise HTTPException(404, NOT_FOUND)
        await run_in_threadpool(jobs.cancel_batch, dep, batch_id)
        progress = await run_in_threadpool(jobs.batch_progress, dep, batch_id, school_code)
        assert progress is not None
        return progress


STATE_TEXT = {
    "queued": ("Đang chờ xử lý", "Queued", "indeterminate"),
    "running": ("Đang ký và ghi sổ", "Signing and logging", "indeterminate"),
    "done": ("Đã cấp xong", "Done: every document issued", "valid"),
    "failed": ("Xong, có văn bản lỗi", "Finished with failures", "invalid"),
    "cancelled": ("Đã huỷ", "Cancelled", "invalid"),
}


def add_batch_page(app: FastAPI, dep: Deployment) -> None:
    """``/lo/{id}``: a batch's progress for people, by its unguessable id; counts only, no names or document ids."""
    from verifier.web import SECURITY_HEADERS, TEMPLATES

    @app.get("/lo/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
    async def batch_page(batch_id: str) -> HTMLResponse:
        progress = await run_in_threadpool(jobs.batch_progress, dep, batch_id) if len(batch_id) == 32 else None
        if progress is None:
            html = TEMPLATES.get_template("not_found.html.j2").render()
            return HTMLResponse(html, status_code=404, headers=SECURITY_HEADERS)
        counts, total = progress["counts"], progress["total"]
        vi, en, css = STATE_TEXT[progress["state"]]
        finished = progress["state"] in ("done", "failed", "cancelled")
        html = TEMPLATES.get_template("batch.html.j2").render(
            short_id=batch_id[:8],
            state_vi=vi,
            state_en=en,
            css=css,
            counts=counts,
            total=total,
            done=counts["issued"] + counts["failed"] + counts["cancelled"],
            finished=finished,
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS | ({} if finished else {"Refresh": "5"}))
