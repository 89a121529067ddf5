"""Issuing a document: render → sign (PDF and XML, in the law's order) → store → log, all or nothing.

The PDF carries the canonical XML as its PDF/A-3 attachment (covered by the PAdES signatures); the XML stored
beside it is the same canonical data in a signed envelope with one XAdES B-T signature per signer, in the same
order, so the XML is a complete legal document on its own.

A document row is written as *pending* before any signature, and becomes *issued* in the same database
transaction that appends its ledger entry, so the registry and the log can never disagree. A crash in
between leaves a pending row that can be issued again; no half-signed file is ever published. Issuing again
under the same ``doc_id`` (a retried batch job) reuses that pending row, and the status flip is conditional on
the row still being pending, inside the ledger's transaction: a document is logged once, however often it is
retried or by how many workers at once (the loser's transaction, entry included, rolls back: AlreadyIssued).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

import schemas
from errors import PermanentError
from hsm_adapters.base import KeyBackend
from ledger.entry import Entry, EntryType
from ledger.store import Ledger
from registry import lifecycle
from registry.lookup import lookup_columns
from registry.records import DocumentRecord, DocumentStatus
from registry.statusindex import add_with_status_index
from schemas.qrlink import token_digest
from schemas.qrseal import SealClaims, new_token
from schemas.qrseal import qr_payload as make_qr_payload
from schemas.xml import to_xml
from signer.pdf import PadesSigner, SignatureRequest, signing_time_text
from signer.qrseal import make_seal
from signer.redact import personal_data, personal_values
from signer.render import RenderedDocument, Renderer, RenderJob
from signer.storage import Blobs
from signer.xades import XadesSigner, XmlSignatureRequest, envelope

ROLE_ORDER = ("homeroom_teacher", "principal", "seal")
ROLE_TITLES = {
    "homeroom_teacher": "Giáo viên chủ nhiệm",
    "principal": "Hiệu trưởng",
    "seal": "Con dấu của đơn vị",
}
ID_PREFIX = {"transcript": "HB", "diploma": "VB", "copy": "BS"}


class AlreadyIssued(PermanentError, RuntimeError):
    """The document under this id is no longer pending (issued by an earlier or concurrent run)."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"document {doc_id} is not pending any more; not logged twice")
        self.doc_id = doc_id


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


def new_doc_id(doc: schemas.Document) -> str:
    return f"{ID_PREFIX[doc.kind]}-{doc.issue_date.year}-{secrets.token_hex(6).upper()}"


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
    blobs: Blobs
    verify_base_url: str
    timestamp_urls: Sequence[str] = ()
    xades: XadesSigner | None = None
    lookup_key: bytes | None = None  # the installation secret for the bulk look-up hashes (verifier.lookup)
    pending_dir: Path | None = None  # the issuing journal (see ``issue``); None: no resuming, no de-duplication
    # the check before signing (signer.precheck + the identity registry): raises to refuse, nothing signed
    precheck: Callable[[schemas.Document, list[tuple[str, KeyBackend]]], None] | None = None

    def __post_init__(self) -> None:
        if self.xades is None:  # one per Issuer, so a batch reuses its revocation data (RevocationCache)
            pades = self.pades
            self.xades = XadesSigner(
                timestamp_urls=self.timestamp_urls, trust_roots=pades.trust_roots, other_certs=pades.other_certs
            )

    def issue(
        self,
        doc: schemas.Document,
        entry_type: EntryType = "issue",
        *,
        doc_id: str | None = None,
        token: str | None = None,
    ) -> IssuedDocument:
        """Render, sign, store and log one document; the holder's data is masked in every log line meanwhile.

        ``entry_type`` is "copy" for certified copies (bản sao). A batch passes the ``doc_id`` and ``token`` it
        reserved so that a retry issues the same document. Raises AlreadyIssued when that id is no longer pending.

        Without a reserved id and with a journal (``pending_dir``), issuing the same data again resumes or returns
        the earlier document: the journal entry (``<sha256 of the canonical XML>.json``: id, token, QR payload) is
        written and synced before the pending row, so after a crash at any point a re-run with the same data
        finishes that document under the same id and QR code instead of issuing a second one, and a re-run after
        it was issued returns it unchanged. A revoked or superseded document is not returned: the data is issued
        anew."""
        with personal_data(personal_values(_holder(doc))):
            payload: str | None = None
            journal = self._journal(doc) if entry_type == "issue" and doc_id is None else None
            if journal is not None and journal.exists():
                known = json.loads(journal.read_text(encoding="utf-8"))
                with Session(self.engine) as session:
                    existing = session.get(DocumentRecord, known["doc_id"])
                    if existing is not None:
                        session.expunge(existing)
                if existing is not None and existing.status == DocumentStatus.ISSUED.value:
                    return self._issued(existing, known["qr_payload"])
                if existing is None or existing.status == DocumentStatus.PENDING.value:
                    doc_id, token, payload = known["doc_id"], known["token"], known["qr_payload"]
            job, token = self._prepare(doc, doc_id=doc_id, token=token, qr_payload=payload)
            if journal is not None and payload is None:
                record = {"doc_id": job.doc_id, "token": token, "qr_payload": job.qr_payload}
                _write_synced(journal, json.dumps(record))
            rendered = self.renderer.render(doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)
            return self._complete(job, token, rendered, entry_type)

    def _journal(self, doc: schemas.Document) -> Path | None:
        """The issuing journal entry for this exact data (``pending_dir/<sha256 of the canonical XML>.json``)."""
        if self.pending_dir is None:
            return None
        return self.pending_dir / f"{hashlib.sha256(to_xml(doc)).hexdigest()}.json"

    def _issued(self, record: DocumentRecord, payload: str) -> IssuedDocument:
        assert record.sha256_pdf and record.sha256_xml and record.leaf_index is not None
        pdf, xml = self.blobs.get(record.sha256_pdf, "pdf"), self.blobs.get(record.sha256_xml, "xml")
        return IssuedDocument(record.id, record.token, payload, pdf, xml, record.leaf_index, record)

    def issue_many(self, docs: Iterable[schemas.Document], *, render_workers: int = 0) -> Iterator[IssuedDocument]:
        """Issue a batch, each document exactly as `issue` does, yielding them in order.

        With ``render_workers >= 1`` the PDFs are laid out in that many worker processes while this process
        signs, stores and logs the documents already rendered, so on two cores rendering and signing overlap.
        """
        prepared: deque[tuple[RenderJob, str]] = deque()

        def jobs() -> Iterator[RenderJob]:
            for doc in docs:
                prepared.append(self._prepare(doc))
                yield prepared[-1][0]

        for rendered in self.renderer.render_many(jobs(), workers=render_workers):
            job, token = prepared.popleft()
            with personal_data(personal_values(_holder(job.doc))):
                yield self._complete(job, token, rendered)

    def start(
        self, doc: schemas.Document, *, doc_id: str | None = None, token: str | None = None
    ) -> tuple[str, str, str, Any, schemas.School]:
        """Render the document and write its *pending* row: (doc id, QR token, QR payload, rendering, school).

        Used by deferred signing (signer's own keys), which signs later; `issue` does all of it at once."""
        job, token = self._prepare(doc, doc_id=doc_id, token=token)
        rendered = self.renderer.render(doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)
        self._record_pending(job, token)
        return job.doc_id, token, job.qr_payload, rendered, _school(doc)

    def _prepare(
        self,
        doc: schemas.Document,
        *,
        doc_id: str | None = None,
        token: str | None = None,
        qr_payload: str | None = None,
    ) -> tuple[RenderJob, str]:
        """The document id, its QR token and payload, and the canonical XML: everything the render needs."""
        doc_id = doc_id or new_doc_id(doc)
        token = token or new_token()
        xml = to_xml(doc)
        holder, school = _holder(doc), _school(doc)
        claims = SealClaims(
            doc_id=doc_id,
            kind=doc.kind,
            holder_name=holder.full_name,
            birth_date=holder.birth_date,
            issue_date=doc.issue_date,
            issuer=school.code,
            xml_sha256=hashlib.sha256(xml).digest(),
            link_digest=token_digest(token),
        )
        payload = qr_payload or make_qr_payload(self.verify_base_url, token, make_seal(claims, self.qr_key))  # type: ignore[arg-type]
        return RenderJob(doc, doc_id, payload, xml), token

    def _record_pending(self, job: RenderJob, token: str) -> None:
        """Write the *pending* row. A reserved id whose row is still pending (a retried batch item) is reused;
        any other existing row raises AlreadyIssued."""
        doc = job.doc
        holder, school = _holder(doc), _school(doc)
        lookup = lookup_columns(self.lookup_key, doc) if self.lookup_key else {}
        record = DocumentRecord(
            id=job.doc_id,
            token=token,
            kind=doc.kind,
            school_code=school.code,
            school_name=school.name,
            holder_masked=holder.masked_name,
            issue_date=doc.issue_date,
            status=DocumentStatus.PENDING.value,
            translation_of=doc.original_doc_id if isinstance(doc, schemas.Translation) else None,
            lookup_number=lookup.get("lookup_number"),
            lookup_holder=lookup.get("lookup_holder"),
        )
        with Session(self.engine) as session:
            existing = session.get(DocumentRecord, job.doc_id)
        if existing is None:
            add_with_status_index(self.engine, record)  # pending row, with its random place in the status list
        elif existing.status != DocumentStatus.PENDING.value or existing.token != token:
            raise AlreadyIssued(job.doc_id)

    def _complete(
        self, job: RenderJob, token: str, rendered: RenderedDocument, entry_type: EntryType = "issue"
    ) -> IssuedDocument:
        """Record as pending, sign the PDF and the XML in the law's order, store, then log and mark issued."""
        doc, doc_id, payload = job.doc, job.doc_id, job.qr_payload
        school = _school(doc)
        slots = sorted(
            (s for s in rendered.slots if s.role in self.keys),
            key=lambda s: ROLE_ORDER.index(s.role) if s.role in ROLE_ORDER else len(ROLE_ORDER),
        )
        if self.precheck is not None:  # refuses (raises) before anything is recorded or signed
            self.precheck(doc, [(slot.role, self.keys[slot.role]) for slot in slots])
        self._record_pending(job, token)
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

        xades = self.xades
        assert xades is not None  # set in __post_init__
        signed_xml = envelope(job.xml)
        for slot in slots:
            signed_xml = xades.sign(
                signed_xml,
                self.keys[slot.role],
                XmlSignatureRequest(slot.role, ROLE_TITLES.get(slot.role, slot.role)),
            )

        refers = doc.original_leaf_index if isinstance(doc, schemas.Translation) else None
        leaf_index, stored = self.publish(doc_id, pdf, signed_xml, signers, entry_type, refers=refers)
        return IssuedDocument(doc_id, token, payload, pdf, signed_xml, leaf_index, stored)

    def publish(
        self,
        doc_id: str,
        pdf: bytes,
        signed_xml: bytes,
        signers: list[dict[str, str]],
        entry_type: EntryType = "issue",
        *,
        refers: int | None = None,
    ) -> tuple[int, DocumentRecord]:
        """Store the signed files and, in one transaction, log the issue and mark the row issued (``refers``: the
        original's entry, for a translation).

        The status flip is conditional on the row still being pending, inside the ledger's transaction: a
        concurrent or repeated publish raises AlreadyIssued and its log entry rolls back with it."""
        sha_pdf = self.blobs.put(pdf, "pdf")
        sha_xml = self.blobs.put(signed_xml, "xml")
        now = datetime.now(UTC)
        entry = Entry(
            type=entry_type,
            doc_id=doc_id,
            pdf_sha256=sha_pdf,
            xml_sha256=sha_xml,
            signer_cert_sha256=signers[-1]["cert_sha256"] if signers else "",
            time=now,
            refers=refers,
        )
        named = [{k: v for k, v in s.items() if k != "cert_sha256"} for s in signers]
        try:
            leaf_index = lifecycle.publish(self.engine, self.ledger, entry, signers=named, at=now)
        except lifecycle.StatusChanged:  # another run issued it first: this entry rolled back too
            raise AlreadyIssued(doc_id) from None
        with Session(self.engine) as session:
            stored = session.get(DocumentRecord, doc_id)
            assert stored is not None
            session.expunge(stored)
        return leaf_index, stored
