"""The deferred workflow: law's order, durable pending state, stale and mismatched signatures refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlmodel import Session, select

import schemas
from hsm_adapters.soft import SoftKeyBackend
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.devpki import DevPki
from sealtrail.settings import Settings
from tests.deferred.conftest import cert_pem, make_deployment
from tests.signing.test_pades import _pdfsig
from workflow.signing import (
    AWAITING,
    DONE,
    WAITING,
    SigningFlow,
    SigningFlowError,
    SigningTask,
    register_signer,
    signer_for_credential,
)


def flow_for(dep: Deployment) -> SigningFlow:
    return SigningFlow(dep.make_issuer(), dep.intermediates)


def _tasks(dep: Deployment, doc_id: str) -> list[SigningTask]:
    with Session(dep.engine) as session:
        return list(session.exec(select(SigningTask).where(SigningTask.doc_id == doc_id).order_by("step")))


def _sign(flow: SigningFlow, signer, key: SoftKeyBackend, item) -> str:  # type: ignore[no-untyped-def]
    """The state after the signature, as the API prints it."""
    return str(
        flow.submit(
            signer,
            item.task_id,
            pdf_to_sign=item.pdf_to_sign,
            xml_to_sign=item.xml_to_sign,
            pdf_signature=key.sign_digest(bytes.fromhex(item.pdf_to_sign), "sha256"),
            xml_signature=key.sign_digest(bytes.fromhex(item.xml_to_sign), "sha256"),
        )
    )


def test_teacher_then_principal_then_seal_survives_a_restart(
    dev_pki: DevPki, tmp_path: Path, database_url: str
) -> None:
    dep = make_deployment(tmp_path / "data", dev_pki, database_url)
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    school = doc.school.code  # type: ignore[union-attr]
    teacher, t_cred = register_signer(
        dep.engine, school_code=school, role="homeroom_teacher", display_name="Cô Lan",
        certificate_pem=cert_pem(dev_pki, "homeroom_teacher"),
    )  # fmt: skip
    principal, p_cred = register_signer(
        dep.engine, school_code=school, role="principal", display_name="Thầy Hùng",
        certificate_pem=cert_pem(dev_pki, "principal"),
    )  # fmt: skip
    flow = flow_for(dep)
    doc_id = flow.start(doc, {"homeroom_teacher": teacher.id, "principal": principal.id})
    assert [t.status for t in _tasks(dep, doc_id)] == [AWAITING, WAITING, WAITING]
    assert flow.pending(principal) == []  # the principal signs only after the teacher
    (item,) = flow.pending(teacher)
    assert item.summary["pupil"] == doc.holder.full_name and item.summary["school_year"]

    # "restart": a new deployment object and flow over the same data directory and database
    dep2 = Deployment(Settings(data_dir=dep.settings.data_dir, dev_pki_url=dev_pki.base_url, database_url=database_url))
    flow2 = flow_for(dep2)
    assert signer_for_credential(dep2.engine, t_cred).id == teacher.id  # type: ignore[union-attr]
    teacher_key = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("homeroom_teacher"))
    principal_key = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))

    # the principal cannot sign the teacher's step, and a wrong key is refused without changing anything
    with pytest.raises(SigningFlowError) as err:
        _sign(flow2, principal, principal_key, item)
    assert err.value.status == 404
    with pytest.raises(SigningFlowError) as err:
        _sign(flow2, teacher, principal_key, item)
    assert err.value.status == 422 and "không khớp" in str(err.value)
    assert [t.status for t in _tasks(dep2, doc_id)] == [AWAITING, WAITING, WAITING]

    assert _sign(flow2, teacher, teacher_key, item) == "awaiting principal"
    with pytest.raises(SigningFlowError) as err:  # the same signature again is stale now
        _sign(flow2, teacher, teacher_key, item)
    assert err.value.status == 409
    (p_item,) = flow2.pending(principal)
    assert _sign(flow2, principal, principal_key, p_item) == "issued"  # the seal (server key) follows at once
    tasks = _tasks(dep2, doc_id)
    assert [t.status for t in tasks] == [DONE, DONE, DONE]
    with Session(dep2.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        assert record is not None and record.status == "issued" and record.leaf_index is not None
    pdf = dep2.settings.documents_dir / record.sha256_pdf[:2] / f"{record.sha256_pdf}.pdf"  # type: ignore[index]
    text = _pdfsig(pdf)
    assert text.count("Signature Validation: Signature is Valid.") == 3, text
    assert dep2.pdf_verifier.verify(pdf.read_bytes()).verdict == "valid"
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == tasks[-1].output_pdf_sha256
    assert p_cred != t_cred


def test_cli_registers_a_signer_and_queues_documents_for_them(dev_pki: DevPki, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sealtrail.cli import app

    dep = make_deployment(tmp_path / "data", dev_pki)
    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dev_pki.base_url}
    cert = tmp_path / "teacher.pem"
    cert.write_bytes(cert_pem(dev_pki, "homeroom_teacher"))
    school = schemas.load_sample("transcript_thcs")["school"]["code"]
    runner = CliRunner()
    args = ["signer", "register", "--school", school, "--role", "homeroom_teacher", "--name", "Cô Lan"]
    result = runner.invoke(app, [*args, "--cert", str(cert), "--credential-out", str(tmp_path / "cred")], env=env)
    assert result.exit_code == 0, result.output
    credential = (tmp_path / "cred").read_text().strip()
    assert credential not in result.output and (tmp_path / "cred").stat().st_mode & 0o077 == 0
    signer = signer_for_credential(dep.engine, credential)
    assert signer is not None and signer.role == "homeroom_teacher"
    bad = runner.invoke(app, [*args[:-4], "--role", "janitor", "--name", "X", "--cert", str(cert)], env=env)
    assert bad.exit_code == 2 and "unknown role" in bad.output

    result = runner.invoke(
        app, ["signing", "start", "transcript_thcs", "--signer", f"homeroom_teacher={signer.id}"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "awaiting homeroom_teacher" in result.output
    flow = flow_for(dep)
    assert len(flow.pending(signer)) == 1
    foreign = runner.invoke(app, ["signing", "start", "diploma_thpt", "--signer", f"principal={signer.id}"], env=env)
    assert foreign.exit_code == 2 and "cannot sign as principal" in foreign.output
    assert runner.invoke(app, ["signing", "resume"], env=env).output.strip().endswith("awaiting homeroom_teacher")


def test_publishing_twice_logs_once(dev_pki: DevPki, tmp_path: Path) -> None:
    """Two finishing requests racing for the same document: the second is refused and its log entry rolled back."""
    from sealtrail.ledgerwiring import ledger_for

    dep = make_deployment(tmp_path / "data", dev_pki)
    flow = flow_for(dep)
    doc_id = flow.start(schemas.parse_document(schemas.load_sample("transcript_thcs")), {})  # all server keys
    tasks = _tasks(dep, doc_id)
    assert [t.status for t in tasks] == [DONE, DONE, DONE]
    ledger, _ = ledger_for(dep)
    with dep.engine.connect() as conn:
        size = ledger.size(conn)
    last = tasks[-1]
    pdf, xml = flow.blobs.get(last.output_pdf_sha256, "pdf"), flow.blobs.get(last.output_xml_sha256, "xml")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not pending"):
        flow.issuer.publish(doc_id, pdf, xml, [])
    with dep.engine.connect() as conn:
        assert ledger.size(conn) == size
