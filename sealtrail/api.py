"""The staff API: school software sends document data as JSON; SealTrail checks, renders, signs and logs it.

Authentication, until accounts and roles arrive: one API key per school, created with
``sealtrail api-key create --school CODE``. Only the key's SHA-256 is kept (``DATA_DIR/api-keys.json``); the key
itself is shown once. A key only issues documents of its own school (tenant isolation): a batch naming any other
school is refused as a whole.

A batch is all-or-nothing at the checking stage: every document is validated (and its averages recomputed)
first, and every problem of every document is reported at once; nothing is issued unless all pass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

import schemas
from sealtrail.deployment import Deployment

MAX_BATCH = 50
_KEYS_FILE = "api-keys.json"
_write_lock = threading.Lock()


def _keys_path(dep: Deployment) -> Path:
    return dep.settings.resolved_data_dir / _KEYS_FILE


def _load_keys(dep: Deployment) -> dict[str, str]:
    """sha256(key) → school code."""
    path = _keys_path(dep)
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def create_api_key(dep: Deployment, school_code: str) -> str:
    """A new key for ``school_code``; only its hash is stored. Returns the key (show it once)."""
    key = "st_" + secrets.token_urlsafe(32)
    with _write_lock:
        keys = _load_keys(dep)
        keys[hashlib.sha256(key.encode()).hexdigest()] = school_code
        path = _keys_path(dep)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600, exist_ok=True)
        tmp.write_text(json.dumps(keys, indent=1), encoding="utf-8")
        tmp.replace(path)
    return key


def _school_for(dep: Deployment, request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "Cần khoá API (Authorization: Bearer …) / an API key is required")
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    for known, school in _load_keys(dep).items():
        if hmac.compare_digest(known, digest):
            return school
    raise HTTPException(401, "Khoá API không đúng / the API key is not valid")


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
        payload: Any = Body(..., description="One document or a list of them, as JSON (see schemas/jsonschema)"),  # noqa: B008
        school_code: str = Depends(school),
    ) -> dict[str, Any]:
        """Check a batch of documents; if every one is valid and of the key's school, issue them all."""
        items = payload if isinstance(payload, list) else [payload]
        if not items or len(items) > MAX_BATCH:
            raise HTTPException(422, f"Gửi từ 1 đến {MAX_BATCH} văn bản mỗi lần / send 1 to {MAX_BATCH} documents")
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
        from sealtrail.demo import issuer_for

        issuer = issuer_for(dep)
        issued = []
        for doc in docs:
            result = await run_in_threadpool(issuer.issue, doc)
            issued.append({"id": result.doc_id, "kind": doc.kind, "url": result.qr_payload.split("#", 1)[0]})
        return {"issued": issued}

    return router
