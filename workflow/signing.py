"""Deferred signing workflow: who must sign which document next, kept in the database so it survives restarts.

A document is rendered and its row written as *pending*; then one ``signing_tasks`` row per signature slot, in the
law's order (homeroom teacher, principal, seal). Only the first unfinished step is ever *awaiting*: its PDF and XML
have been prepared (``signer.deferred``), the prepared bytes are in the blob store and the two digests to sign are
in the row. Steps signed by a key the server holds (usually the seal, in the HSM) are signed as soon as they are
reached. When the last step is done the document is published (stored, logged, marked issued) exactly as
``Issuer.issue`` does.

Signers' own keys: a small registry of signers (school, role, name, the registered certificate) with a bearer
credential of which only the SHA-256 is kept. A registered signer may belong to a person of the staff accounts
(``person_id``): the approval workflow then sends that person's step to their own key.

Steps may be *held* (``start(..., hold_from=role)``): the approval workflow starts a document when the homeroom
teacher signs and holds the principal's and the seal's steps until the principal approves (``release``). A
document not issued yet can be withdrawn (``cancel``): its steps, its prepared files and its pending row go.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asn1crypto import pem, x509
from sqlalchemy import JSON, Column, DateTime, Engine, Text, UniqueConstraint, update
from sqlmodel import Field, Session, SQLModel, select

import schemas
from accounts.models import Person
from errors import PermanentError
from registry.records import DocumentRecord, DocumentStatus
from signer.deferred import (
    DeferredPades,
    DeferredXades,
    PreparedPdf,
    PreparedXml,
    SignerIdentity,
    StaleSignatureError,
)
from signer.issue import ROLE_ORDER, ROLE_TITLES, Issuer
from signer.pdf import SignatureRequest, SigningError, signing_time_text
from signer.xades import XadesSigner, XmlSignatureRequest, envelope

log = logging.getLogger("sealtrail.signing")

WAITING, AWAITING, DONE, HELD = "waiting", "awaiting", "done", "held"


class Stage(StrEnum):
    """Where a document stands in its signing steps after the flow moved it on as far as it could."""

    AWAITING = AWAITING  # a registered signer's step is prepared: it waits for their key
    HELD = HELD  # held until the principal approves (the approval workflow)
    ISSUED = "issued"  # every step signed and the document published
    DELAYED = "delayed"  # a signature was accepted, but the server's next step failed; `signing resume` retries it


@dataclass(frozen=True)
class FlowState:
    """A document's state in the signing flow: its stage, whose step it is (awaiting/held) and, when the next step
    was delayed, the error type that delayed it. ``str()`` gives the form the API and the CLI print."""

    stage: Stage
    role: str | None = None
    delayed_by: str | None = None

    def __str__(self) -> str:
        if self.stage is Stage.ISSUED:
            return "issued"
        if self.stage is Stage.DELAYED:
            return f"signed; next step delayed ({self.delayed_by})"
        return f"{self.stage.value} {self.role}"

    @property
    def issued(self) -> bool:
        return self.stage is Stage.ISSUED

    def awaiting(self, role: str) -> bool:
        return self.stage is Stage.AWAITING and self.role == role


KIND_TITLES = {"transcript": "Học bạ", "diploma": "Văn bằng", "copy": "Bản sao"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class RegisteredSigner(SQLModel, table=True):
    """A person who signs with their own key (USB token via the agent, or a remote signing service)."""

    __tablename__ = "registered_signers"

    id: str = Field(primary_key=True, max_length=32)
    school_code: str = Field(index=True, max_length=32)
    role: str = Field(max_length=32)
    display_name: str = Field(max_length=255)
    cert_sha256: str = Field(max_length=64)
    certificate_pem: str = Field(sa_column=Column(Text, nullable=False))
    credential_sha256: str = Field(max_length=64, unique=True)
    active: bool = True
    # The staff account, if any. The key names the table through its model, so importing this module alone puts
    # ``people`` in the metadata too (else SQLAlchemy cannot resolve the key: NoReferencedTableError).
    person_id: int | None = Field(default=None, foreign_key=f"{Person.__tablename__}.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

    def identity(self, intermediates: list[x509.Certificate]) -> SignerIdentity:
        certs = [x509.Certificate.load(der) for _, _, der in pem.unarmor(self.certificate_pem.encode(), multiple=True)]
        extra = [c for c in intermediates if c.sha256 not in {x.sha256 for x in certs}]
        return SignerIdentity(certs[0], (*certs[1:], *extra))


class SigningTask(SQLModel, table=True):
    """One signature slot of one document: waiting for earlier steps, awaiting its signer, or done."""

    __tablename__ = "signing_tasks"
    __table_args__ = (UniqueConstraint("doc_id", "step", name="uq_signing_tasks_doc_step"),)

    id: str = Field(primary_key=True, max_length=32)
    doc_id: str = Field(foreign_key="documents.id", index=True, max_length=64)
    step: int
    role: str = Field(max_length=32)
    signer_id: str | None = Field(default=None, foreign_key="registered_signers.id", index=True, max_length=32)
    status: str = Field(default=WAITING, index=True, max_length=16)
    summary: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    field_name: str = Field(max_length=64)
    lock_document: bool = False
    input_pdf_sha256: str | None = Field(default=None, max_length=64)
    input_xml_sha256: str | None = Field(default=None, max_length=64)
    prepared_pdf_sha256: str | None = Field(default=None, max_length=64)
    prepared_xml_sha256: str | None = Field(default=None, max_length=64)
    pdf_state: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    pdf_to_sign: str | None = Field(default=None, max_length=128)
    xml_to_sign: str | None = Field(default=None, max_length=128)
    output_pdf_sha256: str | None = Field(default=None, max_length=64)
    output_xml_sha256: str | None = Field(default=None, max_length=64)
    cert_sha256: str | None = Field(default=None, max_length=64)
    signed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SigningFlowError(PermanentError):
    """A request the workflow cannot honour; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- the signer registry ---------------------------------------------------------------------------------------
def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.strip().encode()).hexdigest()


def register_signer(
    engine: Engine,
    *,
    school_code: str,
    role: str,
    display_name: str,
    certificate_pem: bytes,
    person_id: int | None = None,
) -> tuple[RegisteredSigner, str]:
    """Register a signer with their certificate; returns the row and the bearer credential (shown once)."""
    if role not in ROLE_ORDER:
        raise SigningFlowError(f"Vai trò không hợp lệ / unknown role {role!r} (use {', '.join(ROLE_ORDER)})")
    if pem.detect(certificate_pem):
        ders = [der for _, _, der in pem.unarmor(certificate_pem, multiple=True)]
    else:
        ders = [certificate_pem]
    try:
        certs = [x509.Certificate.load(der) for der in ders]
        certs[0].native  # noqa: B018 - parse now, not at the first signature
    except (ValueError, TypeError, IndexError) as exc:
        raise SigningFlowError(f"Tệp chứng thư số không đọc được / the certificate file is unreadable: {exc}") from exc
    credential = "sts_" + secrets.token_urlsafe(32)
    row = RegisteredSigner(
        id="sg-" + secrets.token_hex(5),
        school_code=school_code,
        role=role,
        display_name=display_name,
        cert_sha256=hashlib.sha256(certs[0].dump()).hexdigest(),
        certificate_pem="".join(pem.armor("CERTIFICATE", c.dump()).decode() for c in certs),
        credential_sha256=credential_hash(credential),
        person_id=person_id,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
    return row, credential


def signer_for_credential(engine: Engine, credential: str) -> RegisteredSigner | None:
    digest = credential_hash(credential)
    with Session(engine) as session:
        for row in session.exec(select(RegisteredSigner).where(RegisteredSigner.active == True)):  # noqa: E712
            if hmac.compare_digest(row.credential_sha256, digest):
                session.expunge(row)
                return row
    return None


def signer_of_person(engine: Engine, person_id: int | None, school_code: str, role: str) -> RegisteredSigner | None:
    """The active registered signer (own key) of a staff person for this school and role, if they have one."""
    if person_id is None:
        return None
    with Session(engine) as session:
        row = session.exec(
            select(RegisteredSigner).where(
                RegisteredSigner.person_id == person_id,
                RegisteredSigner.school_code == school_code,
                RegisteredSigner.role == role,
                RegisteredSigner.active == True,  # noqa: E712
            )
        ).first()
        if row is not None:
            session.expunge(row)
        return row


# -- the workflow ------------------------------------------------------------------------------------------------
def _summary(doc: schemas.Document, doc_id: str) -> dict[str, str]:
    school_year, class_name = "", ""
    if isinstance(doc, schemas.Transcript):
        years = doc.years or doc.primary_years
        if years:
            school_year, class_name = years[-1].school_year, years[-1].class_name
    elif isinstance(doc, schemas.Diploma):
        school_year = str(doc.graduation_year)
    return {
        "doc_id": doc_id,
        "kind": doc.kind,
        "kind_title": KIND_TITLES.get(doc.kind, doc.kind),
        "pupil": doc.holder.full_name,
        "birth_date": doc.holder.birth_date.isoformat(),
        "school_year": school_year,
        "class_name": class_name,
    }


@dataclass(frozen=True)
class PendingItem:
    """What the agent is told about one awaiting signature (digests hex, SHA-256)."""

    task_id: str
    role: str
    summary: dict[str, str]
    pdf_to_sign: str
    xml_to_sign: str
    signed_attrs: str  # base64 DER: lets the agent recompute pdf_to_sign itself
    document_digest: str
    region_start: int
    region_end: int
    cert_sha256: str


class SigningFlow:
    """Starts documents, prepares each awaiting step, accepts signatures, and publishes finished documents."""

    def __init__(self, issuer: Issuer, intermediates: list[x509.Certificate], xades: XadesSigner | None = None) -> None:
        self.issuer = issuer
        self.engine = issuer.engine
        self.blobs = issuer.blobs
        self.intermediates = intermediates
        self.xades = (
            xades
            or issuer.xades
            or XadesSigner(
                timestamp_urls=issuer.timestamp_urls,
                trust_roots=issuer.pades.trust_roots,
                other_certs=issuer.pades.other_certs,
            )
        )
        self.pdf = DeferredPades(issuer.pades)
        self.xml = DeferredXades(self.xades)

    # -- starting ---------------------------------------------------------------------------------------------
    def start(self, doc: schemas.Document, signers: Mapping[str, str], hold_from: str | None = None) -> str:
        """Render ``doc`` and queue its signatures; roles in ``signers`` (role → registered signer id) are signed
        by that person with their own key, the others by the server's keys. With ``hold_from`` that role's step
        and every later one wait for ``release``. Returns the document id."""
        school = doc.school.code if isinstance(doc, schemas.Transcript) else doc.issuer.code
        with Session(self.engine) as session:
            for role, signer_id in signers.items():
                row = session.get(RegisteredSigner, signer_id)
                if row is None or not row.active:
                    raise SigningFlowError(f"Không có người ký {signer_id} / no registered signer {signer_id}", 404)
                if row.role != role or row.school_code != school:
                    raise SigningFlowError(
                        f"{row.display_name} ({row.role}, {row.school_code}) không ký được vai trò {role} của trường "
                        f"{school} / this signer cannot sign as {role} for school {school}",
                        403,
                    )
        doc_id, _token, _payload, rendered, _school = self.issuer.start(doc)
        slots = sorted(
            (s for s in rendered.slots if s.role in signers or s.role in self.issuer.keys),
            key=lambda s: ROLE_ORDER.index(s.role) if s.role in ROLE_ORDER else len(ROLE_ORDER),
        )
        missing = [s.role for s in rendered.slots if s.role not in signers and s.role not in self.issuer.keys]
        if missing:
            raise SigningFlowError(f"Không ai ký vai trò {', '.join(missing)} / nobody signs {', '.join(missing)}")
        pdf_sha = self.blobs.put(rendered.pdf, "pdf")
        xml_sha = self.blobs.put(envelope(_xml_of(doc)), "xml")
        summary = _summary(doc, doc_id)
        held_at = next((i for i, s in enumerate(slots) if s.role == hold_from), None) if hold_from else None
        with Session(self.engine) as session:
            for i, slot in enumerate(slots):
                session.add(
                    SigningTask(
                        id="st-" + secrets.token_hex(6),
                        doc_id=doc_id,
                        step=i,
                        role=slot.role,
                        signer_id=signers.get(slot.role),
                        status=HELD if held_at is not None and i >= held_at else WAITING,
                        summary=summary,
                        field_name=slot.field_name,
                        lock_document=i == len(slots) - 1,
                        input_pdf_sha256=pdf_sha if i == 0 else None,
                        input_xml_sha256=xml_sha if i == 0 else None,
                    )
                )
            session.commit()
        self.advance(doc_id)
        return doc_id

    # -- moving on ----------------------------------------------------------------------------------------------
    def advance(self, doc_id: str) -> FlowState:
        """Do everything that can be done now for ``doc_id``: sign server-held steps, prepare the next person's
        step, publish when all are done. Returns the document's state: awaiting or held (with the role), or
        issued."""
        while True:
            with Session(self.engine) as session:
                tasks = list(session.exec(select(SigningTask).where(SigningTask.doc_id == doc_id).order_by("step")))
                for t in tasks:
                    session.expunge(t)
            current = next((t for t in tasks if t.status != DONE), None)
            if current is None:
                self._publish(doc_id, tasks)
                return FlowState(Stage.ISSUED)
            if current.status in (AWAITING, HELD):
                return FlowState(Stage(current.status), current.role)
            if current.input_pdf_sha256 is None or current.input_xml_sha256 is None:
                previous = tasks[current.step - 1]
                current.input_pdf_sha256, current.input_xml_sha256 = (
                    previous.output_pdf_sha256,
                    previous.output_xml_sha256,
                )
            if current.signer_id is None:
                self._sign_on_server(current)
            else:
                self._prepare(current)
                return FlowState(Stage.AWAITING, current.role)

    def tasks(self, doc_id: str) -> list[SigningTask]:
        """The document's signing steps in the law's order."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(SigningTask).where(SigningTask.doc_id == doc_id).order_by("step")))
            for row in rows:
                session.expunge(row)
        return rows

    def release(self, doc_id: str, signers: Mapping[str, str] | None = None) -> FlowState:
        """Let the held steps go on (the principal approved), optionally to registered signers (role → signer id),
        and advance. Releasing twice is harmless."""
        with self.engine.begin() as conn:
            for role, signer_id in (signers or {}).items():
                conn.execute(
                    update(SigningTask)
                    .where(SigningTask.doc_id == doc_id, SigningTask.role == role, SigningTask.status == HELD)  # type: ignore[arg-type]
                    .values(signer_id=signer_id)
                )
            conn.execute(
                update(SigningTask)
                .where(SigningTask.doc_id == doc_id, SigningTask.status == HELD)  # type: ignore[arg-type]
                .values(status=WAITING)
            )
        return self.advance(doc_id)

    def cancel(self, doc_id: str) -> None:
        """Withdraw a document that is not issued: its signing steps, the prepared files waiting for a signer's key
        and its pending row are removed. An issued document is refused (revoke it instead)."""
        with Session(self.engine) as session:
            record = session.get(DocumentRecord, doc_id)
        if record is None:
            raise SigningFlowError(f"Không có văn bản {doc_id} / no document {doc_id}", 404)
        if record.status != DocumentStatus.PENDING.value:
            raise SigningFlowError(
                f"Văn bản {doc_id} đã cấp; hãy thu hồi thay vì huỷ / {doc_id} is issued already: revoke it instead", 409
            )
        tasks = self.tasks(doc_id)
        table = DocumentRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            conn.execute(SigningTask.__table__.delete().where(SigningTask.__table__.c.doc_id == doc_id))  # type: ignore[attr-defined]
            gone = conn.execute(
                table.delete().where(table.c.id == doc_id, table.c.status == DocumentStatus.PENDING.value)
            ).rowcount
            if gone != 1:  # published meanwhile: keep everything
                raise SigningFlowError(f"Văn bản {doc_id} vừa được cấp / {doc_id} was issued meanwhile", 409)
        for task in tasks:  # unsigned drafts only; signed outputs are kept like any stored file
            for sha, ext in ((task.prepared_pdf_sha256, "pdf"), (task.prepared_xml_sha256, "xml")):
                if sha and task.status == AWAITING:
                    self.blobs.discard(sha, ext)

    def _request(self, task: SigningTask, name: str) -> SignatureRequest:
        return SignatureRequest(
            field_name=task.field_name,
            signer_name=name,
            reason=f"{ROLE_TITLES.get(task.role, task.role)} ký xác nhận",
            location="",
            lock_document=task.lock_document,
        )

    def _sign_on_server(self, task: SigningTask) -> None:
        assert task.input_pdf_sha256 and task.input_xml_sha256
        backend = self.issuer.keys[task.role]
        name = str(backend.certificate.subject.native.get("common_name", task.role))
        pdf = self.issuer.pades.sign(self.blobs.get(task.input_pdf_sha256, "pdf"), backend, self._request(task, name))
        xml = self.xades.sign(
            self.blobs.get(task.input_xml_sha256, "xml"),
            backend,
            XmlSignatureRequest(task.role, ROLE_TITLES.get(task.role, task.role)),
        )
        self._mark_done(task, WAITING, pdf, xml, hashlib.sha256(backend.certificate.dump()).hexdigest())

    def _prepare(self, task: SigningTask) -> None:
        assert task.input_pdf_sha256 and task.input_xml_sha256 and task.signer_id
        with Session(self.engine) as session:
            signer = session.get(RegisteredSigner, task.signer_id)
            assert signer is not None
            session.expunge(signer)
        identity = signer.identity(self.intermediates)
        prepared_pdf = self.pdf.prepare(
            self.blobs.get(task.input_pdf_sha256, "pdf"), identity, self._request(task, signer.display_name)
        )
        prepared_xml = self.xml.prepare(
            self.blobs.get(task.input_xml_sha256, "xml"),
            identity,
            XmlSignatureRequest(task.role, ROLE_TITLES.get(task.role, task.role)),
        )
        values = {
            "status": AWAITING,
            "input_pdf_sha256": task.input_pdf_sha256,
            "input_xml_sha256": task.input_xml_sha256,
            "prepared_pdf_sha256": self.blobs.put(prepared_pdf.prepared, "pdf"),
            "prepared_xml_sha256": self.blobs.put(prepared_xml.prepared, "xml"),
            "pdf_state": prepared_pdf.state(),
            "pdf_to_sign": prepared_pdf.to_sign.hex(),
            "xml_to_sign": prepared_xml.to_sign.hex(),
            "cert_sha256": signer.cert_sha256,
        }
        with self.engine.begin() as conn:
            conn.execute(
                update(SigningTask)
                .where(SigningTask.id == task.id, SigningTask.status == WAITING)  # type: ignore[arg-type]
                .values(**values)
            )

    def _mark_done(self, task: SigningTask, expected: str, pdf: bytes, xml: bytes, cert_sha256: str) -> None:
        """Store the signed files and move the step to done, only if nobody else did it first."""
        values = {
            "status": DONE,
            "input_pdf_sha256": task.input_pdf_sha256,
            "input_xml_sha256": task.input_xml_sha256,
            "output_pdf_sha256": self.blobs.put(pdf, "pdf"),
            "output_xml_sha256": self.blobs.put(xml, "xml"),
            "cert_sha256": cert_sha256,
            "signed_at": utcnow(),
        }
        with self.engine.begin() as conn:
            result = conn.execute(
                update(SigningTask)
                .where(SigningTask.id == task.id, SigningTask.status == expected)  # type: ignore[arg-type]
                .values(**values)
            )
            if result.rowcount != 1:
                raise SigningFlowError("Bước ký này đã được xử lý / this signing step was already handled", 409)

    def _publish(self, doc_id: str, tasks: list[SigningTask]) -> None:
        with Session(self.engine) as session:
            record = session.get(DocumentRecord, doc_id)
            if record is None or record.status != DocumentStatus.PENDING.value:
                return
        last = tasks[-1]
        assert last.output_pdf_sha256 and last.output_xml_sha256
        signers = [
            {
                "role": t.role,
                "title": ROLE_TITLES.get(t.role, t.role),
                "time": signing_time_text(t.signed_at or utcnow()),
                "cert_sha256": t.cert_sha256 or "",
            }
            for t in tasks
        ]
        self.issuer.publish(
            doc_id,
            self.blobs.get(last.output_pdf_sha256, "pdf"),
            self.blobs.get(last.output_xml_sha256, "xml"),
            signers,
        )

    # -- the signer's side --------------------------------------------------------------------------------------
    def pending(self, signer: RegisteredSigner) -> list[PendingItem]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(SigningTask)
                .where(SigningTask.signer_id == signer.id, SigningTask.status == AWAITING)
                .order_by(SigningTask.created_at, SigningTask.doc_id)  # type: ignore[arg-type]
            ).all()
        return [
            PendingItem(
                task_id=t.id,
                role=t.role,
                summary=dict(t.summary),
                pdf_to_sign=t.pdf_to_sign or "",
                xml_to_sign=t.xml_to_sign or "",
                signed_attrs=(t.pdf_state or {}).get("signed_attrs", ""),
                document_digest=(t.pdf_state or {}).get("document_digest", ""),
                region_start=int((t.pdf_state or {}).get("region_start", 0)),
                region_end=int((t.pdf_state or {}).get("region_end", 0)),
                cert_sha256=t.cert_sha256 or "",
            )
            for t in rows
        ]

    def prepared_file(self, signer: RegisteredSigner, task_id: str, ext: str) -> bytes:
        """The prepared PDF or XML of a step awaiting ``signer`` (so the agent can check the digests itself)."""
        with Session(self.engine) as session:
            task = session.get(SigningTask, task_id)
        if task is None or task.signer_id != signer.id or task.status != AWAITING:
            raise SigningFlowError("Không có văn bản này trong danh sách chờ ký / no such pending signature", 404)
        sha = task.prepared_pdf_sha256 if ext == "pdf" else task.prepared_xml_sha256
        assert sha is not None
        return self.blobs.get(sha, ext)

    def submit(
        self,
        signer: RegisteredSigner,
        task_id: str,
        *,
        pdf_to_sign: str,
        xml_to_sign: str,
        pdf_signature: bytes,
        xml_signature: bytes,
    ) -> FlowState:
        """Embed a signer's two signatures; all or nothing. Returns the document's state after advancing."""
        with Session(self.engine) as session:
            task = session.get(SigningTask, task_id)
            if task is None or task.signer_id != signer.id:
                raise SigningFlowError("Không có văn bản này trong danh sách chờ ký / no such pending signature", 404)
            session.expunge(task)
            record = session.get(DocumentRecord, task.doc_id)
        if task.status != AWAITING or record is None or record.status != DocumentStatus.PENDING.value:
            raise SigningFlowError(
                "Văn bản này không còn chờ chữ ký của bạn (đã ký hoặc đã huỷ) / this document no longer awaits "
                "your signature (already signed or withdrawn)",
                409,
            )
        if not (
            hmac.compare_digest(pdf_to_sign, task.pdf_to_sign or "")
            and hmac.compare_digest(xml_to_sign, task.xml_to_sign or "")
        ):
            raise SigningFlowError(
                "Mã băm đã ký không phải mã băm đang chờ (văn bản đã được chuẩn bị lại) / the signed digest is not "
                "the one awaiting signature (the document was prepared again)",
                409,
            )
        identity = signer.identity(self.intermediates)
        if identity.cert_sha256 != task.cert_sha256:
            raise SigningFlowError("Chứng thư số đã đổi / the registered certificate changed", 409)
        assert task.prepared_pdf_sha256 and task.prepared_xml_sha256 and task.pdf_state
        try:
            prepared_pdf = PreparedPdf.from_state(self.blobs.get(task.prepared_pdf_sha256, "pdf"), task.pdf_state)
            prepared_xml = PreparedXml(
                self.blobs.get(task.prepared_xml_sha256, "xml"), task.role, bytes.fromhex(task.xml_to_sign or "")
            )
        except OSError as exc:
            raise SigningFlowError(f"Tệp chuẩn bị ký bị hỏng / the prepared file is damaged: {exc}", 500) from exc
        try:
            pdf = self.pdf.finish(prepared_pdf, identity, pdf_signature)
            xml = self.xml.finish(prepared_xml, identity, xml_signature)
        except StaleSignatureError as exc:
            raise SigningFlowError(str(exc), 422) from exc
        except SigningError as exc:
            raise SigningFlowError(
                f"Chưa ký được, thử lại sau; văn bản vẫn chờ ký / not signed yet, try again later: {exc}", 503
            ) from exc
        self._mark_done(task, AWAITING, pdf, xml, identity.cert_sha256)
        try:
            return self.advance(task.doc_id)
        except Exception as exc:  # the signature is kept; the next step is retried by `sealtrail signing resume`
            log.warning("document %s: next step not reached yet: %s", task.doc_id, exc)
            return FlowState(Stage.DELAYED, delayed_by=exc.__class__.__name__)

    def resume_all(self) -> dict[str, FlowState]:
        """Advance every pending document (after a restart or a failed server-side step)."""
        with Session(self.engine) as session:
            ids = sorted(
                set(session.exec(select(SigningTask.doc_id).where(SigningTask.status != DONE)).all())
                | {
                    d
                    for d in session.exec(
                        select(SigningTask.doc_id)
                        .join(DocumentRecord, DocumentRecord.id == SigningTask.doc_id)  # type: ignore[arg-type]
                        .where(DocumentRecord.status == DocumentStatus.PENDING.value)
                    ).all()
                }
            )
        return {doc_id: self.advance(doc_id) for doc_id in ids}


def _xml_of(doc: schemas.Document) -> bytes:
    from schemas.xml import to_xml

    return to_xml(doc)
