"""Routes for interoperability: public status lists and JSON-LD context, and the staff credential export."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hsm_adapters.base import KeyBackendError
from schemas.statuslist import PURPOSE, StatusListError, list_name
from schemas.vcschema import OWN_CONTEXT, TRANSCRIPT_SCHEMA, VC_DIR
from sealtrail.deployment import Deployment
from sealtrail.web.api import _school_for
from signer.credentials import DocumentNotFoundError, ExportError, export_vc, status_list_jwt
from signer.vc import MEDIA_TYPE
from verifier.web import SECURITY_HEADERS

STATUS_CACHE = "public, max-age=300"


def make_interop_router(dep: Deployment) -> APIRouter:
    router = APIRouter(tags=["interoperability"])

    @router.get("/status/{school}/{year}/{purpose}")
    async def status_list(school: str, year: str, purpose: str) -> Response:
        """The school's signed Bitstring Status List for a school year (application/vc+jwt). The whole list is
        served to everyone, so fetching it reveals nothing about which document is being checked."""
        from registry.statusindex import list_names

        try:
            name = list_name(school, year)
            if purpose != PURPOSE or name not in list_names(dep.engine, school):
                raise StatusListError(name)
        except StatusListError:
            raise HTTPException(404, "Không có danh sách trạng thái này / no such status list") from None
        try:
            token = await run_in_threadpool(status_list_jwt, dep, name)
        except KeyBackendError:
            raise HTTPException(
                503, "Chưa ký được danh sách trạng thái, hãy thử lại sau / the status list cannot be signed right now"
            ) from None
        return Response(token, media_type=MEDIA_TYPE, headers={**SECURITY_HEADERS, "Cache-Control": STATUS_CACHE})

    @router.get("/issuers/{school}")
    def issuer(school: str) -> Response:
        """The issuer Profile a credential's ``issuer.id`` names: the school's code and name, nothing else."""
        from sqlmodel import Session, select

        from registry.records import DocumentRecord
        from signer.vc import OB_V3, VC_V2, issuer_id

        with Session(dep.engine) as session:
            name = session.exec(
                select(DocumentRecord.school_name).where(DocumentRecord.school_code == school).limit(1)
            ).first()
        if name is None:
            raise HTTPException(404, "Không có đơn vị này / no such issuer")
        profile = {
            "@context": [VC_V2, OB_V3],
            "id": issuer_id(dep.settings.public_base_url, school),
            "type": ["Profile"],
            "name": name,
        }
        return JSONResponse(profile, media_type="application/ld+json", headers={"Cache-Control": STATUS_CACHE})

    @router.get("/ns/credentials/v1", include_in_schema=False)
    def context() -> Response:
        body = (VC_DIR / OWN_CONTEXT).read_bytes()
        return Response(body, media_type="application/ld+json", headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/ns/credentials/transcript-credential.schema.json", include_in_schema=False)
    def transcript_schema() -> Response:
        body = (VC_DIR / TRANSCRIPT_SCHEMA).read_bytes()
        return Response(body, media_type="application/schema+json", headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/api/v1/documents/{doc_id}/vc", tags=["staff"])
    async def document_vc(doc_id: str, request: Request) -> Response:
        """The document as a W3C Verifiable Credential (compact JWS), for the key's own school only."""
        school = _school_for(dep, request)
        try:
            token = await run_in_threadpool(export_vc, dep, doc_id, school)
        except ExportError as exc:
            raise HTTPException(404 if isinstance(exc, DocumentNotFoundError) else 409, str(exc)) from None
        return Response(
            token,
            media_type=MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{doc_id}.jwt"', "Cache-Control": "no-store"},
        )

    return router
