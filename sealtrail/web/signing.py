"""HTTP API for signers' own keys: the documents awaiting one signer, their prepared files, and the signatures.

Used by ``sealtrail agent`` on the signer's PC (USB token) and by the remote adapter. Every call carries the
signer's bearer credential (``sealtrail signer register``) and sees only that signer's pending steps.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sealtrail.deployment import Deployment
from workflow.signing import RegisteredSigner, SigningFlow, SigningFlowError, Stage, signer_for_credential


class SignatureIn(BaseModel):
    pdf_to_sign: str = Field(pattern=r"^[0-9a-f]{64}$", description="The PDF digest that was signed (hex)")
    xml_to_sign: str = Field(pattern=r"^[0-9a-f]{64}$", description="The XML SignedInfo digest that was signed (hex)")
    pdf_signature: str = Field(max_length=4096, description="Base64 raw signature over pdf_to_sign")
    xml_signature: str = Field(max_length=4096, description="Base64 raw signature over xml_to_sign")


def flow_for(dep: Deployment) -> SigningFlow:
    return SigningFlow(dep.make_issuer(), dep.intermediates)


def make_signing_router(dep: Deployment) -> APIRouter:
    router = APIRouter(prefix="/api/v1/signing", tags=["signing"])
    flows: list[SigningFlow] = []

    def flow() -> SigningFlow:
        if not flows:
            flows.append(flow_for(dep))
        return flows[0]

    def signer(request: Request) -> RegisteredSigner:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise HTTPException(
                401, "Cần mã xác thực người ký (Authorization: Bearer …) / a signer credential is needed"
            )
        row = signer_for_credential(dep.engine, credential)
        if row is None:
            raise HTTPException(401, "Mã xác thực người ký không đúng / the signer credential is not valid")
        return row

    def me_json(row: RegisteredSigner) -> dict[str, str]:
        return {
            "id": row.id,
            "display_name": row.display_name,
            "school_code": row.school_code,
            "role": row.role,
            "cert_sha256": row.cert_sha256,
        }

    @router.get("/me")
    def me(row: RegisteredSigner = Depends(signer)) -> dict[str, str]:  # noqa: B008
        """The signer this credential belongs to, with the registered certificate's SHA-256."""
        return me_json(row)

    @router.get("/pending")
    async def pending(row: RegisteredSigner = Depends(signer)) -> dict[str, Any]:  # noqa: B008
        """The documents awaiting this signer's signature (and only this signer's), oldest first."""
        items = await run_in_threadpool(flow().pending, row)
        return {"signer": me_json(row), "items": [asdict(i) for i in items]}

    @router.get("/{task_id}/prepared.{ext}")
    async def prepared(task_id: str, ext: str, row: RegisteredSigner = Depends(signer)) -> Response:  # noqa: B008
        """The prepared PDF or XML, so the agent can recompute the digests it is asked to sign."""
        if ext not in ("pdf", "xml"):
            raise HTTPException(404, "pdf hoặc xml / pdf or xml")
        try:
            data = await run_in_threadpool(flow().prepared_file, row, task_id, ext)
        except SigningFlowError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return Response(data, media_type="application/pdf" if ext == "pdf" else "application/xml")

    @router.post("/{task_id}/signature")
    async def signature(task_id: str, body: SignatureIn, row: RegisteredSigner = Depends(signer)) -> dict[str, str]:  # noqa: B008
        """Embed this signer's signatures; refused as a whole (nothing written) if anything does not match."""
        try:
            pdf_sig = base64.b64decode(body.pdf_signature, validate=True)
            xml_sig = base64.b64decode(body.xml_signature, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "Chữ ký không phải base64 / the signature is not base64") from None
        try:
            state = await run_in_threadpool(
                lambda: flow().submit(
                    row,
                    task_id,
                    pdf_to_sign=body.pdf_to_sign,
                    xml_to_sign=body.xml_to_sign,
                    pdf_signature=pdf_sig,
                    xml_signature=xml_sig,
                )
            )
        except SigningFlowError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        if state.stage in (Stage.HELD, Stage.ISSUED):  # an own key in the approval workflow: its item moves on
            from jobs.approval import own_key_signed

            await run_in_threadpool(own_key_signed, dep, task_id)
        return {"task_id": task_id, "state": str(state)}

    return router
