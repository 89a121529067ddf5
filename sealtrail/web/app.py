"""The web application: public verification pages, the public log, the verification API, health checks."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from sealtrail.web.errors import openapi_errors
from verifier.details import details_from_store
from verifier.pdf import MAX_PDF_BYTES
from verifier.ratelimit import RateLimiter
from verifier.web import make_public_router


def create_app(settings: Settings | None = None) -> FastAPI:
    deployment = Deployment(settings or Settings())
    engine = deployment.engine
    app = FastAPI(
        title="SealTrail",
        description="Học bạ số và văn bằng số: cấp, ký, ghi sổ cái và xác thực / Digital transcripts and diplomas",
        version="0.1.0",
        # Any route may answer these (credentials, tenants, unknown ids, state conflicts): documented once for all.
        responses=openapi_errors(400, 401, 403, 404, 409),
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
    app.include_router(
        make_public_router(engine, ledger_check, tlog_proof, limiter=page_limit, holder_details=holder_details)
    )
    app.include_router(make_log_router(engine.connect, ledger, vkey))

    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"])
    def healthz() -> str:
        return "ok"

    def full_check(data: bytes) -> tuple[Any, str, DocumentRecord | None]:
        """Signatures (PDF or XML, by content), then the registry and the log: fail-closed on both."""
        from verifier.checking import check_upload

        checked = check_upload(deployment, data)
        return checked.report, checked.format, checked.record

    from verifier.upload import make_upload_router

    app.include_router(make_upload_router(full_check, verify_limit, responses=openapi_errors(413, 429)))

    def format_and_report(data: bytes) -> tuple[str, Any]:
        report, fmt, _record = full_check(data)
        return fmt, report

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

    from sealtrail.web.bulk import install as install_bulk

    install_bulk(app, deployment, format_and_report)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory sealtrail.web.app:app_factory`."""
    return create_app(Settings())
