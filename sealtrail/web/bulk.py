"""``POST /api/v1/verify/bulk``: many documents at once for admissions offices (a ZIP of signed files, or a CSV of
look-ups that needs a verifier organisation's key), answered as JSON with a signed receipt, CSV, or a stream of
JSON lines. The work is ``verifier.bulkcheck``; the receipt is sealed here with the institution's seal key."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from accounts.permissions import Actor
from sealtrail.deployment import Deployment
from sealtrail.web.errors import openapi_errors
from verifier.ratelimit import RateLimiter
from verifier.upload import read_upload


def install(app: FastAPI, deployment: Deployment, format_and_report: Callable[[bytes], tuple[str, Any]]) -> None:
    bulk_limit = RateLimiter(1 / 60, burst=3)  # bulk checks are heavy: a few per client (or key), then one a minute

    def bulk_caller(request: Request) -> Actor | None:
        """The look-up key sent (limited per key), or None for an anonymous ZIP check (limited per address)."""
        from sealtrail.web.api import bearer_actor

        actor = bearer_actor(deployment, request)
        wait = bulk_limit.allow(f"key:{actor.key_id}") if actor is not None else 0.0
        if actor is None:
            bulk_limit(request)
        elif wait > 0:
            raise HTTPException(
                429,
                "Quá nhiều yêu cầu với khoá này, thử lại sau / too many requests with this key, try again shortly",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return actor

    @app.post(
        "/api/v1/verify/bulk",
        tags=["verification"],
        response_model=None,
        responses={
            **openapi_errors(400, 401, 403, 413, 429),
            200: {"content": {"application/json": {}, "text/csv": {}, "application/x-ndjson": {}}},
        },
    )
    async def verify_bulk(
        request: Request,
        file: UploadFile,
        format: str = "json",
        caller: Actor | None = Depends(bulk_caller),  # noqa: B008
    ) -> dict[str, Any] | PlainTextResponse | StreamingResponse:
        """Check many documents at once, for admissions offices. The upload is either

        * a **ZIP** of signed PDFs/XMLs: one verdict per file; or
        * a **CSV** (UTF-8, header `so_hieu,ho_ten,ngay_sinh`: diploma number, holder name, date of birth
          dd/mm/yyyy): one answer per row, `valid`, `revoked`, `superseded`, `not_found`, `mismatch` (a document
          has the number but name or birth date differ) or `indeterminate` (the log cannot be proven now).
          A malformed CSV is refused (400) with every bad line named. The look-up needs a verifier
          organisation's API key with the `verify:bulk` scope (`Authorization: Bearer st_…`; 401 without one,
          403 for a key without that scope), so nobody can probe anonymously which diploma numbers exist.

        Answers: JSON with a receipt signed by the service (default), CSV (`?format=csv`), or with
        `Accept: application/x-ndjson` a stream of JSON lines: `start`, one `item` per file/row with
        `done`/`total` (progress), then `summary` with the signed receipt."""
        from verifier import bulkcheck
        from verifier.bulk import MAX_TOTAL_BYTES, BulkError
        from verifier.lookup import LookupCsvError

        data = await read_upload(file, MAX_TOTAL_BYTES)
        if not bulkcheck.is_zip(data, file.filename or ""):
            require_lookup_key(request, caller)
        try:
            job = await run_in_threadpool(bulkcheck.prepare, deployment, data, format_and_report, file.filename or "")
        except BulkError as exc:
            raise HTTPException(400, str(exc)) from None
        except LookupCsvError as exc:
            raise HTTPException(
                400,
                {
                    "message": "Tệp CSV không đọc được, chưa tra cứu dòng nào / the CSV was not looked up",
                    "problems": [{"line": line, "problem": msg} for line, msg in exc.problems],
                },
            ) from None
        if bulkcheck.NDJSON in request.headers.get("accept", ""):
            return StreamingResponse(bulkcheck.stream(job, sign_receipt), media_type=bulkcheck.NDJSON)
        try:
            out, items, results = await run_in_threadpool(bulkcheck.run, job)
        except BulkError as exc:
            raise HTTPException(400, str(exc)) from None
        if format == "csv":
            return PlainTextResponse(
                bulkcheck.as_csv(job, items, results),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="ket-qua-xac-thuc.csv"'},
            )
        receipt = await run_in_threadpool(sign_receipt, items)
        return {
            "count": len(items),
            "kind": job.kind,
            "items": out,
            "receipt_xml": receipt.decode("utf-8") if receipt else None,
        }

    def require_lookup_key(request: Request, caller: Actor | None) -> None:
        """The CSV look-up answers whether a diploma number exists: only for a key with the verify:bulk scope."""
        from accounts.permissions import VERIFY_SCOPE

        if caller is None:
            raise HTTPException(
                401,
                "Tra cứu theo số hiệu cần khoá API của đơn vị xác minh (Authorization: Bearer …) / the CSV look-up "
                "needs a verifier organisation's API key",
            )
        (org,) = caller.roles
        if VERIFY_SCOPE not in caller.scopes:
            app.state.accounts.record(request, caller, "verify.lookup", org=org, outcome="refused")
            raise HTTPException(403, "Khoá API này không có quyền tra cứu / this key lacks the verify:bulk scope")
        app.state.accounts.record(request, caller, "verify.lookup", org=org)

    def sign_receipt(items: list[Any]) -> bytes | None:
        """The receipt, signed with the institution's seal key; None if signing is unavailable right now."""
        from signer.xades import XadesSigner, XmlSignatureRequest, envelope
        from verifier.bulk import receipt_xml

        try:
            key = deployment.signing_keys["seal"]
            signer = XadesSigner(timestamp_urls=deployment.timestamp_urls)
            unsigned = envelope(receipt_xml(items, service=deployment.settings.public_base_url))
            return signer.sign(unsigned, key, XmlSignatureRequest("seal", "Dịch vụ xác thực SealTrail"))
        except Exception as exc:
            logging.getLogger("sealtrail.bulk").warning("verification receipt not signed: %s", exc)
            return None
