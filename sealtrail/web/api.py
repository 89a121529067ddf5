"""The staff API: school software sends document data as JSON; SealTrail checks, renders, signs and logs it.

Machines authenticate with scoped API keys: one school per key, created with
``sealtrail api-key create --school CODE [--scope documents:issue ...]``. Only the key's SHA-256 is kept
(``DATA_DIR/api-keys.json``, with the key's school and scopes); the key itself is shown once. A key only acts for
its own school (tenant isolation) and only within its scopes: a batch naming any other school is refused as a
whole. People signed in with a session use the same permission check (``sealtrail.web.deps.require``).

A batch is all-or-nothing at the checking stage: every document is validated (and its averages recomputed)
first, and every problem of every document is reported at once; nothing is issued unless all pass.

Up to MAX_BATCH documents are issued in the request (201). With ``?async=true``, or for more documents (up to
MAX_ASYNC_BATCH), the checked batch is queued as a job instead (202 + its id; see jobs/batches.py), followed
with ``GET /api/v1/batches/{id}`` and cancelled with ``POST /api/v1/batches/{id}/cancel``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

import schemas
from accounts.apikeys import api_key_actor as api_key_actor
from accounts.apikeys import create_api_key as create_api_key
from accounts.apikeys import key_id as key_id
from accounts.apikeys import list_api_keys as list_api_keys
from accounts.apikeys import revoke_api_key as revoke_api_key
from accounts.permissions import Actor
from sealtrail.deployment import Deployment

MAX_BATCH = 50
MAX_ASYNC_BATCH = 2000


def bearer_actor(dep: Deployment, request: Request) -> Actor | None:
    """The API key sent with ``request`` (None when none is sent; 401 when one is sent but is not valid)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    actor = api_key_actor(dep, key.strip())
    if actor is None:
        raise HTTPException(401, "Khoá API không đúng hoặc đã bị thu hồi / the API key is not valid or was revoked")
    return actor


def _school_for(dep: Deployment, request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "Cần khoá API (Authorization: Bearer …) / an API key is required")
    actor = api_key_actor(dep, key.strip())
    if actor is None:
        raise HTTPException(401, "Khoá API không đúng / the API key is not valid")
    (school,) = actor.roles
    if not actor.can("documents:issue", school):
        raise HTTPException(403, "Khoá API này không có quyền cấp văn bản / this key lacks the documents:issue scope")
    return school


def _key_id(request: Request) -> str:
    """Which key made a request, without the key: the first 16 hex digits of its SHA-256."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _school_of(doc: schemas.Document) -> str:
    return doc.school.code if isinstance(doc, schemas.Transcript) else doc.issuer.code


def make_staff_router(dep: Deployment) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["staff"])

    def school(request: Request) -> str:
        return _school_for(dep, request)

    answers = ((401, "API key missing or wrong"), (403, "A document of another school"), (413, "Body too large"))
    errors = {code: {"description": text, "content": {"application/json": {}}} for code, text in answers}

    @router.post("/documents", status_code=201, responses=errors)  # type: ignore[arg-type]
    async def issue_documents(
        request: Request,
        response: Response,
        payload: Any = Body(..., description="One document or a list of them, as JSON (see schemas/jsonschema)"),  # noqa: B008
        school_code: str = Depends(school),
        as_job: bool = Query(False, alias="async", description="Queue the batch as a job: 202 and the batch's id"),
    ) -> dict[str, Any]:
        """Check a batch of documents; if every one is valid and of the key's school, issue them all."""
        items = payload if isinstance(payload, list) else [payload]
        as_job = as_job or len(items) > MAX_BATCH
        limit = MAX_ASYNC_BATCH if as_job else MAX_BATCH
        if not items or len(items) > limit:
            raise HTTPException(422, f"Gửi từ 1 đến {limit} văn bản mỗi lần / send 1 to {limit} documents")
        docs: list[schemas.Document] = []
        problems: list[dict[str, str]] = []
        for i, item in enumerate(items):
            try:
                docs.append(schemas.parse_document(item))
            except schemas.SchemaError as exc:
                problems += [{"document": str(i), "where": p.where, "problem": p.message} for p in exc.problems]
        if problems:
            raise HTTPException(
                422, {"message": "Không có văn bản nào được cấp / nothing was issued", "problems": problems}
            )
        foreign = sorted({_school_of(d) for d in docs} - {school_code})
        if foreign:
            raise HTTPException(
                403, f"Khoá API của trường {school_code} không cấp được văn bản của {', '.join(foreign)} / "
                "this key cannot issue documents of another school"
            )  # fmt: skip
        if as_job:
            from sealtrail.web.batches import queue_documents

            response.status_code = 202
            return await run_in_threadpool(queue_documents, dep, items, docs, school_code, _key_id(request))
        issuer = dep.make_issuer()
        issued = []
        for doc in docs:
            result = await run_in_threadpool(issuer.issue, doc)
            issued.append({"id": result.doc_id, "kind": doc.kind, "url": result.qr_payload.split("#", 1)[0]})
        return {"issued": issued}

    pdf_answer = {"description": "The translation's signed PDF", "content": {"application/pdf": {}}}
    translation_errors = {
        **errors,
        200: pdf_answer,
        201: pdf_answer,
        404: {"description": "No such document of the key's school", "content": {"application/json": {}}},
        409: {
            "description": "Not issued, revoked, superseded, or not translatable",
            "content": {"application/json": {}},
        },
    }

    @router.post("/documents/{doc_id}/translation", status_code=201, responses=translation_errors)  # type: ignore[arg-type]
    async def translate_document(doc_id: str, school_code: str = Depends(school)) -> Response:
        """The signed English translation of an issued transcript or diploma of the key's school, as PDF: 201 when
        made now, 200 when it was made before (the same file). ``X-Document-Id`` is the translation's id."""
        from signer.translation import TranslationError, translate

        try:
            done = await run_in_threadpool(translate, dep, doc_id, school_code=school_code)
        except TranslationError as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        headers = {
            "X-Document-Id": done.record.id,
            "X-Translation-Of": doc_id,
            "Content-Disposition": f'attachment; filename="{done.record.id}.pdf"',
            "Cache-Control": "no-store",
        }
        return Response(done.pdf, 201 if done.created else 200, headers, media_type="application/pdf")

    from sealtrail.web.batches import add_batch_routes

    add_batch_routes(router, dep, school)
    return router
