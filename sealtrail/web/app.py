"""The web application: public verification pages, the public log, the verification API, health checks."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from accounts.permissions import Actor
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from verifier.details import details_from_store
from verifier.pdf import MAX_PDF_BYTES
from verifier.ratelimit import RateLimiter
from verifier.status import VERDICT_TEXT
from verifier.web import SECURITY_HEADERS, TEMPLATES, make_public_router

UPLOAD_CHUNK = 1024 * 1024


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives (a JSON ``detail``), so clients and schemathesis know."""
    text = {400: "Not a readable upload", 401: "API key missing or wrong", 403: "Not allowed for this key",
            404: "Not found", 409: "Conflicts with the current state (already handled, prepared again)",
            413: "Body too large", 429: "Too many requests (Retry-After)"}  # fmt: skip
    return {code: {"description": text[code], "content": {"application/json": {}}} for code in codes}


def create_app(settings: Settings | None = None) -> FastAPI:
    deployment = Deployment(settings or Settings())
    engine = deployment.engine
    production = deployment.settings.mode == "production"
    app = FastAPI(
        # The interactive docs load their scripts from a CDN: development only (the schema stays at /openapi.json).
        docs_url=None if production else "/docs",
        redoc_url=None if production else "/redoc",
        title="SealTrail",
        description="Học bạ số và văn bằng số: cấp, ký, ghi sổ cái và xác thực / Digital transcripts and diplomas",
        version="0.1.0",
        # Any route may answer these (credentials, tenants, unknown ids, state conflicts): documented once for all.
        responses=_errors(400, 401, 403, 404, 409),
    )
    app.state.deployment = deployment
    from sealtrail.web import errors

    errors.install(app)
    from sealtrail.limits import MULTIPART_OVERHEAD, BodySizeLimit
    from verifier.bulk import MAX_TOTAL_BYTES

    app.add_middleware(
        BodySizeLimit,
        limits=[
            ("/api/v1/verify/bulk", MAX_TOTAL_BYTES + MULTIPART_OVERHEAD),
            ("/api/v1/verify", MAX_PDF_BYTES + MULTIPART_OVERHEAD),
            ("/kiem-tra", MAX_PDF_BYTES + MULTIPART_OVERHEAD),
        ],
        default=16 * 1024 * 1024,  # JSON batches of documents, forms
    )

    from sealtrail.ledgerwiring import check_not_forked, ledger_for, prove_record

    check_not_forked(deployment)

    def ledger_check(record: DocumentRecord) -> bool:
        return prove_record(deployment, record)

    if deployment.settings.public_proof_cache:
        from verifier.proofcache import CachedProver

        ledger_check = CachedProver(deployment)  # type: ignore[assignment]  # same answers, cached per checkpoint

    from ledger.web import make_router as make_log_router

    ledger, vkey = ledger_for(deployment)

    def tlog_proof(record: DocumentRecord) -> bytes:
        assert record.leaf_index is not None
        with engine.connect() as conn:
            return ledger.tlog_proof(conn, record.leaf_index)

    s = deployment.settings
    page_limit = RateLimiter(s.public_rate_per_minute / 60, burst=max(1, s.public_rate_per_minute // 2))
    verify_limit = RateLimiter(s.verify_rate_per_minute / 60, burst=max(1, s.verify_rate_per_minute // 3))
    blobs = deployment.blobs
    holder_details = details_from_store(lambda sha: blobs.get(sha, "xml"))
    from sealtrail.secretkeys import derived_key
    from verifier.gate import AttemptGate

    app.state.public_gate = AttemptGate(engine)  # wrong answers to the QR page's details form, per document
    app.include_router(
        make_public_router(
            engine,
            ledger_check,
            tlog_proof,
            limiter=page_limit,
            holder_details=holder_details,
            gate=app.state.public_gate,
            code_secret=derived_key(deployment, "details-code"),
        )
    )
    app.include_router(make_log_router(engine.connect, ledger, vkey))

    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"])
    def healthz() -> str:
        return "ok"

    from sealtrail.web.uploadcheck import UploadChecker

    # Every public upload check runs in an isolated worker under CPU, memory and wall-clock limits, and stops
    # when its client hangs up (sealtrail.web.uploadcheck, verifier.isolation).
    checker = UploadChecker(deployment)
    app.state.upload_checker = checker

    @app.post(
        "/api/v1/verify", tags=["verification"], dependencies=[Depends(verify_limit)], responses=_errors(413, 429)
    )
    async def verify_upload(request: Request, file: UploadFile) -> dict[str, Any]:
        """Check an uploaded signed PDF or signed XML (told apart by content). Nothing is fetched from the network.
        A file too complex to check within the service's limits answers `indeterminate` (reason `TOO_COMPLEX`)."""
        data = await read_upload(file, MAX_PDF_BYTES)
        checked = await checker.check_request(request, data)
        if checked is None:  # the client hung up: the work was stopped, nobody reads an answer
            raise HTTPException(499, "client closed the request")
        report, fmt, record = checked.report, checked.format, checked.record
        out: dict[str, Any] = {**report.to_json(), "format": fmt}
        if record is not None:
            out["document"] = {"id": record.id, "kind": record.kind, "status": record.status}
            if record.translation_of:  # a translation: its standing (in the reasons) follows this original's
                out["document"]["translation_of"] = record.translation_of
        return out

    from sealtrail.observability import make_ops_router

    app.include_router(make_ops_router(deployment))

    from sealtrail.web.api import make_staff_router

    app.include_router(make_staff_router(deployment))
    from sealtrail.web.batches import add_batch_page

    add_batch_page(app, deployment)
    if engine.dialect.name == "sqlite":  # batches run in this process; pick up those a restart interrupted
        from jobs.batches import resume_local

        resume_local(deployment)
    from sealtrail.web.interop import make_interop_router

    app.include_router(make_interop_router(deployment))

    from sealtrail.web.signing import make_signing_router

    app.include_router(make_signing_router(deployment))

    from sealtrail.web.staff import install as install_accounts

    install_accounts(app, deployment)

    @app.get("/kiem-tra", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> HTMLResponse:
        """The upload-and-check page: a plain form, no JavaScript."""
        return HTMLResponse(TEMPLATES.get_template("upload.html.j2").render(report=None), headers=SECURITY_HEADERS)

    @app.post("/kiem-tra", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(verify_limit)])
    async def upload_check(request: Request, file: UploadFile) -> Response:
        data = await read_upload(file, MAX_PDF_BYTES)
        checked = await checker.check_request(request, data)
        if checked is None:
            return Response(status_code=499)
        report, fmt = checked.report, checked.format
        verdict_vi, verdict_en = VERDICT_TEXT[report.verdict]
        html = TEMPLATES.get_template("upload.html.j2").render(
            report=report,
            verdict_vi=verdict_vi,
            verdict_en=verdict_en,
            filename=(file.filename or "")[:120],
            fmt=fmt,
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

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
            **_errors(400, 401, 403, 413, 429),
            200: {"content": {"application/json": {}, "text/csv": {}, "application/x-ndjson": {}}},
        },
    )
    async def verify_bulk(
        request: Request,
        file: UploadFile,
        format: str = "json",
        caller: Actor | None = Depends(bulk_caller),  # noqa: B008
    ) -> dict[str, Any] | PlainTextResponse | StreamingResponse | Response:
        """Check many documents at once, for admissions offices. The upload is either

        * a **ZIP** of signed PDFs/XMLs: one verdict per file; or
        * a **CSV** (UTF-8, header `so_hieu,ho_ten,ngay_sinh`: diploma number, holder name, date of birth
          dd/mm/yyyy): one answer per row, `valid`, `revoked`, `superseded`, `no_match` (no document has this
          number with this name and birth date: the same answer whether the number exists or not),
          `indeterminate` (the log cannot be proven now) or `rate_limited` (too many rows for this number did not
          match lately; try later). A malformed CSV is refused (400) with every bad line named, and so is one
          asking about one number in more than three rows (a birth-date sweep). The look-up needs a verifier
          organisation's API key with the `verify:bulk` scope (`Authorization: Bearer st_…`; 401 without one,
          403 for a key without that scope), so nobody can probe anonymously which diploma numbers exist.

        Answers: JSON with a receipt signed by the service (default), CSV (`?format=csv`), or with
        `Accept: application/x-ndjson` a stream of JSON lines: `start`, one `item` per file/row with
        `done`/`total` (progress), then `summary` with the signed receipt."""
        from sealtrail.web.uploadcheck import stream_until_disconnected, until_disconnected
        from verifier import bulkcheck
        from verifier.bulk import MAX_TOTAL_BYTES, BulkError
        from verifier.isolation import Stopped
        from verifier.lookup import LookupCsvError

        data = await read_upload(file, MAX_TOTAL_BYTES)
        if not bulkcheck.is_zip(data, file.filename or ""):
            require_lookup_key(request, caller)
        cancel = threading.Event()  # set when the client hangs up: the file in progress stops, no other starts

        def format_and_report(content: bytes) -> tuple[str, Any]:
            checked = checker.check(content, cancel.is_set)
            return checked.format, checked.report

        try:
            job = await run_in_threadpool(
                bulkcheck.prepare, deployment, data, format_and_report, file.filename or "", app.state.public_gate
            )
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
            lines = stream_until_disconnected(bulkcheck.stream(job, sign_receipt), cancel)
            return StreamingResponse(lines, media_type=bulkcheck.NDJSON)
        try:
            out, items, results = await until_disconnected(request, cancel, run_in_threadpool(bulkcheck.run, job))
        except BulkError as exc:
            raise HTTPException(400, str(exc)) from None
        except Stopped:  # the client hung up half-way: the check in progress was stopped, no further file started
            return Response(status_code=499)
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
            signer = XadesSigner(  # B-LT: the receipt proves its seal's status itself, offline
                timestamp_urls=deployment.timestamp_urls,
                trust_roots=deployment.trust_roots,
                other_certs=deployment.intermediates,
            )
            unsigned = envelope(receipt_xml(items, service=deployment.settings.public_base_url))
            return signer.sign(unsigned, key, XmlSignatureRequest("seal", "Dịch vụ xác thực SealTrail"))
        except Exception as exc:
            logging.getLogger("sealtrail.bulk").warning("verification receipt not signed: %s", exc)
            return None

    from sealtrail.hardening import FrameGuard

    if s.trusted_proxies:  # the outermost layer, so that limits and audit rows see the visitor's address
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(s.trusted_proxies))  # type: ignore[arg-type]
    app.add_middleware(FrameGuard)
    return app


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The uploaded file, read in chunks and refused (413) as soon as it passes ``limit`` bytes."""
    data = bytearray()
    while chunk := await file.read(UPLOAD_CHUNK):
        data.extend(chunk)
        if len(data) > limit:
            mb = limit // (1024 * 1024)
            raise HTTPException(413, f"Tệp quá lớn (tối đa {mb} MB) / The file is too large ({mb} MB at most)")
    return bytes(data)


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory sealtrail.web.app:app_factory` (upload check workers pre-started)."""
    app = create_app(Settings())
    app.state.upload_checker.start()
    return app
