"""The web application: public verification pages, the public log, the verification API, health checks."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from ledger.registry import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.storage import BlobStore
from verifier.details import details_from_store
from verifier.pdf import MAX_PDF_BYTES
from verifier.ratelimit import RateLimiter
from verifier.web import make_public_router
from verifier.xml import looks_like_xml

UPLOAD_CHUNK = 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    deployment = Deployment(settings or Settings())
    engine = deployment.engine
    app = FastAPI(
        title="SealTrail",
        description="Học bạ số và văn bằng số: cấp, ký, ghi sổ cái và xác thực / Digital transcripts and diplomas",
        version="0.1.0",
    )
    app.state.deployment = deployment

    from sealtrail.ledgerwiring import check_not_forked, ledger_for, prove_record

    check_not_forked(deployment)

    def ledger_check(record: DocumentRecord) -> bool:
        return prove_record(deployment, record)

    from ledger.web import make_router as make_log_router

    ledger, vkey = ledger_for(deployment)

    def tlog_proof(record: DocumentRecord) -> bytes:
        assert record.leaf_index is not None
        with engine.connect() as conn:
            return ledger.tlog_proof(conn, record.leaf_index)

    s = deployment.settings
    page_limit = RateLimiter(s.public_rate_per_minute / 60, burst=max(1, s.public_rate_per_minute // 2))
    verify_limit = RateLimiter(s.verify_rate_per_minute / 60, burst=max(1, s.verify_rate_per_minute // 3))
    blobs = BlobStore(deployment.settings.documents_dir)
    holder_details = details_from_store(lambda sha: blobs.get(sha, "xml"))
    app.include_router(
        make_public_router(engine, ledger_check, tlog_proof, limiter=page_limit, holder_details=holder_details)
    )
    app.include_router(make_log_router(engine.connect, ledger, vkey))

    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"])
    def healthz() -> str:
        return "ok"

    @app.post("/api/v1/verify", tags=["verification"], dependencies=[Depends(verify_limit)])
    async def verify_upload(file: UploadFile) -> dict[str, Any]:
        """Check an uploaded signed PDF or signed XML (told apart by content). Nothing is fetched from the network."""
        data = bytearray()
        while chunk := await file.read(UPLOAD_CHUNK):
            data.extend(chunk)
            if len(data) > MAX_PDF_BYTES:
                raise HTTPException(413, "Tệp quá lớn (tối đa 50 MB) / The file is too large (50 MB at most)")
        if looks_like_xml(bytes(data)):
            xml_report = await run_in_threadpool(deployment.xml_verifier.verify, bytes(data))
            return xml_report.to_json()
        report = await run_in_threadpool(deployment.pdf_verifier.verify, bytes(data))
        return {**report.to_json(), "format": "pdf"}

    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory sealtrail.app:app_factory`."""
    return create_app(Settings())
