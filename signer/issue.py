"""Issuing a document: render → sign (PDF and XML, in the law's order) → store → log, all or nothing.

The PDF carries the canonical XML as its PDF/A-3 attachment (covered by the PAdES signatures); the XML stored
beside it is the same canonical data in a signed envelope with one XAdES B-T signature per signer, in the same
order, so the XML is a complete legal document on its own.

A document row is written as *pending* before any signature, and becomes *issued* in the same database
transaction that appends its ledger entry, so the registry and the log can never disagree. A crash in
between leaves a pending row that can be issued again; no half-signed file is ever published.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

import schemas
from hsm_adapters.base import KeyBackend
from ledger.entry import Entry
from ledger.registry import DocumentRecord, DocumentStatus
from ledger.store import Ledger
from schemas.xml import to_xml
from signer.pdf import PadesSigner, SignatureRequest, signing_time_text
from signer.render import Renderer
from signer.storage import BlobStore
from signer.xades import XadesSigner, XmlSignatureRequest, envelope
from verifier.qrseal import SealClaims, make_seal, new_token, qr_payload

ROLE_ORDER = ("homeroom_teacher", "principal", "seal")
ROLE_TITLES = {
    "homeroom_teacher": "Giáo viên chủ nhiệm",
    "principal": "Hiệu trưởng",
    "seal": "Con dấu của đơn vị",
}
ID_PREFIX = {"transcript": "HB", "diploma": "VB", "copy": "BS"}


@dataclass(frozen=True)
class IssuedDocument:
    doc_id: str
    token: str
    qr_payload: str
    pdf: bytes
    xml: bytes
    leaf_index: int
    record: DocumentRecord


def _write_synced(path: Path, text: str) -> None:
    """Write ``path`` atomically and durably (temp file, fsync, rename, fsync of the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _holder(doc: schemas.Document) -> schemas.Person:
    return doc.holder


def _school(doc: schemas.Document) -> schemas.School:
    return doc.school if isinstance(doc, schemas.Transcript) else doc.issuer


def _cert_sha256(backend: KeyBackend) -> str:
    return hashlib.sha256(backend.certificate.dump()).hexdigest()


@dataclass
class Issuer:
    """Everything needed to issue documents for one deployment; built once, used for many documents."""

    engine: Engine
    renderer: Renderer
    pades: PadesSigner
    keys: Mapping[str, KeyBackend]
    qr_key: object
    ledger: Ledger
    blobs: BlobStore
    verify_base_url: str
    timestamp_urls: Sequence[str] = ()
    xades: XadesSigner | None = None

    pending_dir: Path | None = None  # the issuing journal (see ``issue``); None: no resuming, no de-duplication

    def issue(self, doc: schemas.Document) -> IssuedDocument:
        """Issue ``doc``; with a journal, issuing the same data again resumes or returns the earlier document.

        The journal entry (``pending_dir/<sha256 of the canonical XML>.json``: id, token, QR payload) is written
        and synced before the pending row, so after a crash at any point a re-run with the same data finishes that
        document under the same id and QR code instead of issuing a second one, and a re-run after it was issued
        returns it unchanged. A revoked or superseded document is not returned: the same data is issued anew."""
        xml = to_xml(doc)
        journal = self._journal(xml)
        if journal is not None and journal.exists():
            known = json.loads(journal.read_text(encoding="utf-8"))
            with Session(self.engine) as session:
                existing = session.get(DocumentRecord, known["doc_id"])
                if existing is not None:
                    session.expunge(existing)
            if existing is not None and existing.status == DocumentStatus.ISSUED.value:
                return self._issued(existing, known["qr_payload"])
            if existing is None or existing.status == DocumentStatus.PENDING.value:
                return self._issue(doc, xml, known["doc_id"], known["token"], journal, resume=existing is not None)
        doc_id = f"{ID_PREFIX[doc.kind]}-{doc.issue_date.year}-{secrets.token_hex(6).upper()}"
        return self._issue(doc, xml, doc_id, new_token(), journal, resume=False)

    def _journal(self, xml: bytes) -> Path | None:
        return None if self.pending_dir is None else self.pending_dir / f"{hashlib.sha256(xml).hexdigest()}.json"

    def _issued(self, record: DocumentRecord, payload: str) -> IssuedDocument:
        assert record.sha256_pdf and record.sha256_xml and record.leaf_index is not None
        pdf, xml = self.blobs.get(record.sha256_pdf, "pdf"), self.blobs.get(record.sha256_xml, "xml")
        return IssuedDocument(record.id, record.token, payload, pdf, xml, record.leaf_index, record)

    def _issue(
        self, doc: schemas.Document, xml: bytes, doc_id: str, token: str, journal: Path | None, *, resume: bool
    ) -> IssuedDocument:
        holder, school = _holder(doc), _school(doc)
        claims = SealClaims(
            doc_id=doc_id,
            kind=doc.kind,
            holder_name=holder.full_name,
            birth_date=holder.birth_date,
            issue_date=doc.issue_date,
            issuer=school.code,
            xml_sha256=hashlib.sha256(xml).digest(),
        )
        payload = qr_payload(self.verify_base_url, token, make_seal(claims, self.qr_key))  # type: ignore[arg-type]
        if journal is not None:
            known = json.loads(journal.read_text(encoding="utf-8")) if journal.exists() else {}
            if known.get("doc_id") == doc_id:
                payload = known["qr_payload"]  # resuming: the same QR code again
            else:
                _write_synced(journal, json.dumps({"doc_id": doc_id, "token": token, "qr_payload": payload}))
        rendered = self.renderer.render(doc, doc_id=doc_id, qr_payload=payload, xml=xml)

        record = DocumentRecord(
            id=doc_id,
            token=token,
            kind=doc.kind,
            school_code=school.code,
            school_name=school.name,
            holder_masked=holder.masked_name,
            issue_date=doc.issue_date,
            status=DocumentStatus.PENDING.value,
        )
        if not resume:
            with Session(self.engine) as session:
                session.add(record)
                session.commit()

        slots = sorted(
            (s for s in rendered.slots if s.role in self.keys),
            key=lambda s: ROLE_ORDER.index(s.role) if s.role in ROLE_ORDER else len(ROLE_ORDER),
        )
        pdf = rendered.pdf
        signers: list[dict[str, str]] = []
        for i, slot in enumerate(slots):
            backend = self.keys[slot.role]
            name = str(backend.certificate.subject.native.get("common_name", slot.role))
            pdf = self.pades.sign(
                pdf,
                backend,
                SignatureRequest(
                    field_name=slot.field_name,
                    signer_name=name,
                    reason=f"{ROLE_TITLES.get(slot.role, slot.role)} ký xác nhận",
                    location=school.province,
                    lock_document=i == len(slots) - 1,
                ),
            )
            signers.append(
                {
                    "role": slot.role,
                    "title": ROLE_TITLES.get(slot.role, slot.role),
                    "time": signing_time_text(datetime.now(UTC)),
                    "cert_sha256": _cert_sha256(backend),
                }
            )

        xades = self.xades or XadesSigner(
            timestamp_urls=self.timestamp_urls, trust_roots=self.pades.trust_roots, other_certs=self.pades.other_certs
        )
        signed_xml = envelope(xml)
        for slot in slots:
            signed_xml = xades.sign(
                signed_xml,
                self.keys[slot.role],
                XmlSignatureRequest(slot.role, ROLE_TITLES.get(slot.role, slot.role)),
            )

        sha_pdf = self.blobs.put(pdf, "pdf")
        sha_xml = self.blobs.put(signed_xml, "xml")
        now = datetime.now(UTC)
        entry = Entry(
            type="issue",
            doc_id=doc_id,
            pdf_sha256=sha_pdf,
            xml_sha256=sha_xml,
            signer_cert_sha256=signers[-1]["cert_sha256"] if signers else "",
            time=now,
        )
        with self.engine.begin() as conn:
            (leaf_index,) = self.ledger.append(conn, [entry])
            conn.execute(
                DocumentRecord.__table__.update()  # type: ignore[attr-defined]
                .where(DocumentRecord.__table__.c.id == doc_id)  # type: ignore[attr-defined]
                .values(
                    status=DocumentStatus.ISSUED.value,
                    sha256_pdf=sha_pdf,
                    sha256_xml=sha_xml,
                    leaf_index=leaf_index,
                    signers=[{k: v for k, v in s.items() if k != "cert_sha256"} for s in signers],
                    issued_at=now,
                )
            )
        with Session(self.engine) as session:
            stored = session.get(DocumentRecord, doc_id)
            assert stored is not None
            session.expunge(stored)
        return IssuedDocument(doc_id, token, payload, pdf, signed_xml, leaf_index, stored)
