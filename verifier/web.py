"""The public verification pages: what a QR code on a transcript or diploma opens."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from sqlmodel import Session, select

from registry.records import DocumentRecord, original_of
from schemas.qrlink import TOKEN
from verifier.gate import AttemptGate, code_matches
from verifier.ratelimit import RateLimiter
from verifier.status import KINDS, VERDICT_TEXT, document_standing

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)


def _vn_time(text: str) -> str:
    """'2026-11-23T15:54:57+07:00' → '15:54 ngày 23/11/2026' (what a Vietnamese reader expects); other text as is."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text
    return when.strftime("%H:%M ngày %d/%m/%Y")


TEMPLATES.filters["vn_time"] = _vn_time
LedgerCheck = Callable[[DocumentRecord], bool]
# The holder's full details from the stored document, shown only to a visitor who knows the date of birth.
HolderDetails = Callable[[DocumentRecord], "Details"]


@dataclass(frozen=True)
class Details:
    birth_date: date
    rows: list[tuple[str, str, str]]  # (Vietnamese label, English label, value)


def _parse_dob(text: str) -> date | None:
    text = text.strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def make_public_router(
    engine: Engine,
    ledger_check: LedgerCheck,
    tlog_proof: Callable[[DocumentRecord], bytes] | None = None,
    limiter: RateLimiter | None = None,
    holder_details: HolderDetails | None = None,
    gate: AttemptGate | None = None,
    code_secret: bytes | None = None,
) -> APIRouter:
    """``gate`` counts wrong answers to the details form; ``code_secret`` derives the holders' details codes."""
    router = APIRouter(dependencies=[Depends(limiter)] if limiter else [])

    def _record(token: str) -> DocumentRecord | None:
        if not TOKEN.fullmatch(token):
            return None
        with Session(engine) as session:
            record = session.exec(select(DocumentRecord).where(DocumentRecord.token == token)).first()
            if record is not None:
                session.expunge(record)
            return record

    @router.get("/v/{token}/tlog-proof", include_in_schema=False)
    def document_proof(token: str) -> Response:
        record = _record(token)
        if record is None or record.leaf_index is None or tlog_proof is None:
            raise HTTPException(404, "No log proof for this code")
        return Response(
            tlog_proof(record),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{record.id}.tlog-proof"', **SECURITY_HEADERS},
        )

    @router.post("/v/{token}", response_class=HTMLResponse, include_in_schema=False)
    def document_details(
        token: str,
        dob: Annotated[str, Form(max_length=32)] = "",
        code: Annotated[str, Form(max_length=32)] = "",
    ) -> HTMLResponse:
        """Full details for a visitor who types the holder's date of birth or the details code (a plain form).

        Wrong answers are counted per document in the database (verifier.gate): after a few, the form locks with
        a doubling wait, whatever address the answers come from; the details code has its own counter."""
        record = _record(token)
        if record is None:
            return document_page(token)
        details = holder_details(record) if holder_details and record.sha256_xml else None
        if details is None:
            html = _render(record, _prove(record), dob_error=True)
            return HTMLResponse(html, status_code=200, headers=SECURITY_HEADERS)
        if code.strip() and code_secret is not None:
            scope = "code"

            def check() -> bool:
                return code_matches(code_secret, record.id, code)
        else:
            scope = "dob"
            given = _parse_dob(dob)

            def check() -> bool:
                return given is not None and hmac.compare_digest(
                    given.isoformat().encode(), details.birth_date.isoformat().encode()
                )

        outcome = gate.attempt(scope, record.id, check) if gate is not None else None
        allowed = outcome.allowed if outcome is not None else check()
        proven = _prove(record)
        if outcome is not None and outcome.locked:
            html = _render(record, proven, locked_minutes=max(1, -(-outcome.retry_after // 60)), code_error=scope)
            headers = {**SECURITY_HEADERS, "Retry-After": str(outcome.retry_after)}
            return HTMLResponse(html, status_code=429, headers=headers)
        if not allowed:
            html = _render(record, proven, dob_error=scope == "dob", code_error=scope if scope == "code" else "")
            return HTMLResponse(html, status_code=200, headers=SECURITY_HEADERS)
        return HTMLResponse(_render(record, proven, details=details), headers=SECURITY_HEADERS)

    @router.get("/v/{token}", response_class=HTMLResponse, include_in_schema=False)
    def document_page(token: str) -> HTMLResponse:
        with Session(engine) as session:
            record = (
                session.exec(select(DocumentRecord).where(DocumentRecord.token == token)).first()
                if TOKEN.fullmatch(token)
                else None
            )
            if record is None:
                # Do the same work as for a real document (a log proof and a page render) on a decoy, so that
                # response times do not tell a guessed token that exists from one that does not.
                issued = DocumentRecord.leaf_index.is_not(None)  # type: ignore[union-attr]
                decoy = session.exec(select(DocumentRecord).where(issued)).first()
                if decoy is not None:
                    _render(decoy, _prove(decoy))
                html = TEMPLATES.get_template("not_found.html.j2").render()
                return HTMLResponse(html, status_code=404, headers=SECURITY_HEADERS)
            html = _render(record, _prove(record))
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def _prove(record: DocumentRecord) -> bool | None:
        try:
            return ledger_check(record) if record.leaf_index is not None else None
        except Exception:  # the log could not be read: the page says "cannot be confirmed", never "valid"
            return None

    def _render(
        record: DocumentRecord,
        proven: bool | None,
        *,
        details: Details | None = None,
        dob_error: bool = False,
        code_error: str = "",
        locked_minutes: int = 0,
    ) -> str:
        standing = document_standing(record, proven, original_of(engine, record))
        kind_vi, kind_en = KINDS.get(record.kind, (record.kind, record.kind))
        verdict_vi, verdict_en = VERDICT_TEXT[standing.verdict]
        return TEMPLATES.get_template("document.html.j2").render(
            doc=record,
            verdict=standing.verdict,
            verdict_vi=verdict_vi,
            verdict_en=verdict_en,
            reasons=standing.reasons,
            kind_vi=kind_vi,
            kind_en=kind_en,
            ledger_ok=bool(proven),
            token=record.token,
            details=details,
            dob_error=dob_error,
            code_error=code_error,
            locked_minutes=locked_minutes,
            accepts_code=code_secret is not None,
            can_reveal=holder_details is not None and record.sha256_xml is not None,
        )

    return router
