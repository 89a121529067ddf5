"""Each signer's step on its own: a homeroom teacher with a registered USB-token key signs through the signing API
(the agent's calls), the principal's batch then adds the principal's signature and the seal; a principal with their
own USB token approves a class whose documents then wait for that token; school software starts and cancels
documents for signers' own keys over HTTP with a scoped API key."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from sqlalchemy import select
from sqlmodel import Session

import schemas
from hsm_adapters.pkcs11 import Pkcs11KeyBackend, import_certificates, import_private_key
from hsm_adapters.soft import SoftKeyBackend
from jobs import approval
from jobs import batches as jobs
from ledger.entry import Entry
from ledger.models import entries
from registry.records import DocumentRecord
from sealtrail.web.api import create_api_key
from signer.storage import BlobStore
from tests.accounts.conftest import SCHOOL_A, SCHOOL_B, World, finish_batch, staff_actor, teacher_signed
from workflow import operations as wf
from workflow.signing import RegisteredSigner, register_signer
from workflow.states import WorkItem

pytestmark = pytest.mark.slow


def _register(world: World, username: str | None, role: str = "homeroom_teacher") -> tuple[str, str]:
    person = staff_actor(world, username).person_id if username else None
    row, credential = register_signer(
        world.dep.engine, school_code=SCHOOL_A, role=role, display_name="Cô Lan",
        certificate_pem=pem.armor("CERTIFICATE", world.dep.dev_pki.cert(role).dump()), person_id=person,
    )  # fmt: skip
    return row.id, credential


def _sign_pending(world: World, credential: str, role: str = "homeroom_teacher", key: Any = None) -> list[str]:
    """What `sealtrail agent` does with the token: fetch the pending list, sign both digests, post them."""
    client = world.client()
    auth = {"Authorization": f"Bearer {credential}"}
    key = key or SoftKeyBackend.from_pkcs12(world.dep.dev_pki.p12_path(role))
    states = []
    for item in client.get("/api/v1/signing/pending", headers=auth).json()["items"]:
        body = {
            "pdf_to_sign": item["pdf_to_sign"],
            "xml_to_sign": item["xml_to_sign"],
            "pdf_signature": base64.b64encode(key.sign_digest(bytes.fromhex(item["pdf_to_sign"]), "sha256")).decode(),
            "xml_signature": base64.b64encode(key.sign_digest(bytes.fromhex(item["xml_to_sign"]), "sha256")).decode(),
        }
        response = client.post(f"/api/v1/signing/{item['task_id']}/signature", json=body, headers=auth)
        assert response.status_code == 200, response.text
        states.append(response.json()["state"])
    return states


def test_a_teacher_with_her_own_token_signs_first_and_the_principal_adds_his_signature_and_the_seal(
    world: World, tmp_path: Path
) -> None:
    dep = world.dep
    from typer.testing import CliRunner

    from sealtrail.cli import app

    cert = tmp_path / "lan.pem"
    cert.write_bytes(pem.armor("CERTIFICATE", dep.dev_pki.cert("homeroom_teacher").dump()))
    env = {
        "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir),
        "SEALTRAIL_DATABASE_URL": dep.settings.effective_database_url,
        "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url,
    }
    args = ["signer", "register", "--school", SCHOOL_A, "--role", "homeroom_teacher", "--name", "Cô Lan"]
    args += ["--cert", str(cert), "--credential-out", str(tmp_path / "cred")]
    nobody = CliRunner().invoke(app, [*args, "--person", "no-such-user"], env=env)
    assert nobody.exit_code == 2 and "no staff account" in nobody.output
    made = CliRunner().invoke(app, [*args, "--person", "homeroom_teacher-a"], env=env)
    assert made.exit_code == 0, made.output
    credential = (tmp_path / "cred").read_text().strip()
    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    (item,) = wf.submit(ctx, None, staff_actor(world, "registrar-a"), SCHOOL_A, schemas.load_sample("class_9a1")[:1])
    teacher = world.login("homeroom_teacher-a")
    csrf = world.csrf["homeroom_teacher-a"]
    for action in ("kiem-tra", "ky"):
        r = teacher.post(f"/can-bo/{SCHOOL_A}/ho-so/{action}", data={"items": [item.id], "csrf_token": csrf})
        assert "loi" not in r.headers["location"], r.headers["location"]
    waiting = wf.get_item(ctx, SCHOOL_A, item.id)
    assert waiting is not None and waiting.state == "teacher_signing"  # prepared for her token, nothing signed
    principal = world.login("principal-a")
    early = principal.post(
        f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": [item.id], "csrf_token": world.csrf["principal-a"]}
    )
    assert "loi=1" in early.headers["location"]  # the principal cannot approve before the teacher signed

    assert _sign_pending(world, credential) == ["held principal"]
    signed = wf.get_item(ctx, SCHOOL_A, item.id)
    assert signed is not None and signed.state == "teacher_signed" and signed.doc_id == waiting.doc_id

    batch = approval.start_batch(ctx, None, staff_actor(world, "principal-a"), SCHOOL_A, [item.id])
    assert finish_batch(world, batch)["state"] == "done"
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, str(signed.doc_id))
        final = session.get(WorkItem, item.id)
    assert record is not None and record.status == "issued" and final is not None and final.state == "issued"
    pdf = tmp_path / "hocba.pdf"
    pdf.write_bytes(BlobStore(dep.settings.documents_dir).get(str(record.sha256_pdf), "pdf"))
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=120).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 3, out
    names = re.findall(r"Signer Certificate Common Name: (.+)", out)
    roles = {
        str(dep.dev_pki.cert(r).subject.native["common_name"]): r for r in ("homeroom_teacher", "principal", "seal")
    }
    assert [roles[n.strip()] for n in names] == ["homeroom_teacher", "principal", "seal"], out


def _signer_register(world: World, tmp_path: Path, role: str, username: str) -> str:
    """`sealtrail signer register --person <username>` with the dev PKI's certificate of ``role``; the credential."""
    from typer.testing import CliRunner

    from sealtrail.cli import app

    dep = world.dep
    cert = tmp_path / f"{role}.pem"
    cert.write_bytes(pem.armor("CERTIFICATE", dep.dev_pki.cert(role).dump()))
    args = ["signer", "register", "--school", SCHOOL_A, "--role", role, "--name", "Thầy Hùng", "--cert", str(cert)]
    args += ["--credential-out", str(tmp_path / "cred"), "--person", username]
    made = CliRunner().invoke(app, args, env=_cli_env(world))
    assert made.exit_code == 0, made.output
    return (tmp_path / "cred").read_text().strip()


def _cli_env(world: World) -> dict[str, str]:
    s = world.dep.settings
    return {
        "SEALTRAIL_DATA_DIR": str(s.data_dir),
        "SEALTRAIL_DATABASE_URL": s.effective_database_url,
        "SEALTRAIL_DEV_PKI_URL": s.dev_pki_url,
    }


def _usb_key(softhsm: Any, dev_pki: Any, role: str) -> Pkcs11KeyBackend:
    """The ``role`` key on the SoftHSM "USB token" (imported once per test session, as a person would)."""
    config = softhsm.config("sealtrail-usb", role)
    try:
        Pkcs11KeyBackend(config).certificate  # noqa: B018
    except Exception:
        import_private_key(config, pem.unarmor((dev_pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
        import_certificates(config, [dev_pki.cert(role), dev_pki.issuing_ca])
    return Pkcs11KeyBackend(config)


def test_a_principal_with_his_own_token_approves_a_class_and_signs_it_in_one_go(
    world: World, tmp_path: Path, softhsm: Any
) -> None:
    dep = world.dep
    credential = _signer_register(world, tmp_path, "principal", "principal-a")
    usb = _usb_key(softhsm, dep.dev_pki, "principal")
    ids = teacher_signed(world, schemas.load_sample("class_9a1")[:2])  # the server's teacher key
    principal = world.login("principal-a")
    csrf = world.csrf["principal-a"]
    started = principal.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": ids, "csrf_token": csrf})
    location = started.headers["location"]
    batch = location.rsplit("/", 1)[1]
    if jobs.is_postgres(dep.engine):
        jobs.run_open_items(dep)  # what `sealtrail worker` does
    deadline = time.monotonic() + 300
    while (progress := jobs.batch_progress(dep, batch))["counts"]["awaiting_token"] < 2:  # type: ignore[index]
        assert time.monotonic() < deadline and progress["counts"]["failed"] == 0, progress  # type: ignore[index]
        time.sleep(0.3)
    assert progress["state"] == "running"  # type: ignore[index]  # not finished while documents wait for the token
    page = principal.get(location).text
    assert page.count("sealtrail agent") >= 2 and 'id="awaiting-token"' in page and "Đã ký và cấp xong" not in page
    with Session(dep.engine) as session:
        own = session.scalars(select(RegisteredSigner).where(RegisteredSigner.role == "principal")).one()
        items = [session.get(WorkItem, i) for i in ids]
        docs = [str(i.doc_id) for i in items if i is not None]
        assert {i.state for i in items if i is not None} == {"approved"}
        assert {session.get(DocumentRecord, d).status for d in docs} == {"pending"}  # type: ignore[union-attr]
    flow = wf.signing_flow(dep)
    for doc_id in docs:  # the principal's step went to his key, not the server's; the seal waits its turn
        assert [(t.role, t.status, t.signer_id) for t in flow.tasks(doc_id)] == [
            ("homeroom_teacher", "done", None), ("principal", "awaiting", own.id), ("seal", "waiting", None),
        ]  # fmt: skip

    assert _sign_pending(world, credential, key=usb) == ["issued", "issued"]  # the agent's calls, one go
    assert _sign_pending(world, credential, key=usb) == []
    progress = jobs.batch_progress(dep, batch)
    assert progress is not None and progress["state"] == "done" and progress["counts"]["issued"] == 2, progress
    assert "Đã ký và cấp xong" in principal.get(location).text
    with Session(dep.engine) as session:
        assert {session.get(WorkItem, i).state for i in ids} == {"issued"}  # type: ignore[union-attr]
        records = [session.get(DocumentRecord, d) for d in docs]
    with dep.engine.connect() as conn:
        logged = [Entry.parse(bytes(d)) for d in conn.execute(select(entries.c.data)).scalars()]
    assert Counter(e.doc_id for e in logged if e.type == "issue") == Counter(docs)  # each issued and logged once
    roles = {
        str(dep.dev_pki.cert(r).subject.native["common_name"]): r for r in ("homeroom_teacher", "principal", "seal")
    }
    for record in records:
        assert record is not None and record.status == "issued"
        (principal_step,) = [t for t in flow.tasks(record.id) if t.role == "principal"]
        assert principal_step.cert_sha256 == own.cert_sha256 == usb.certificate.sha256.hex()
        pdf = tmp_path / f"{record.id}.pdf"
        pdf.write_bytes(BlobStore(dep.settings.documents_dir).get(str(record.sha256_pdf), "pdf"))
        out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=120).stdout
        assert out.count("Signature Validation: Signature is Valid.") == 3, out
        names = re.findall(r"Signer Certificate Common Name: (.+)", out)
        assert [roles[n.strip()] for n in names] == ["homeroom_teacher", "principal", "seal"], out

    from typer.testing import CliRunner

    from sealtrail.cli import app

    audit = CliRunner().invoke(app, ["ledger", "audit"], env=_cli_env(world))
    assert audit.exit_code == 0 and "audit passed" in audit.output, audit.output


def test_school_software_starts_and_cancels_a_document_for_a_signers_own_key(world: World) -> None:
    dep = world.dep
    signer_id, credential = _register(world, None)
    key = create_api_key(dep, SCHOOL_A, ["documents:issue"])
    client = world.client()
    auth = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/schools/{SCHOOL_A}/signing/documents"
    doc = schemas.load_sample("transcript_thcs")

    unknown = client.post(url, json={"document": doc, "signers": {"homeroom_teacher": "sg-nobody"}}, headers=auth)
    assert unknown.status_code == 404, unknown.text
    bad = client.post(url, json={"document": {"kind": "transcript"}, "signers": {}}, headers=auth)
    assert bad.status_code == 422
    foreign = client.post(
        f"/api/v1/schools/{SCHOOL_B}/signing/documents", json={"document": doc, "signers": {}}, headers=auth
    )
    assert foreign.status_code == 403

    started = client.post(url, json={"document": doc, "signers": {"homeroom_teacher": signer_id}}, headers=auth)
    assert started.status_code == 201, started.text
    doc_id = started.json()["id"]
    assert started.json()["state"] == "awaiting homeroom_teacher"
    flow = wf.signing_flow(dep)
    (task, *_rest) = flow.tasks(doc_id)
    blobs = BlobStore(dep.settings.documents_dir)
    prepared = [blobs.path(str(task.prepared_pdf_sha256), "pdf"), blobs.path(str(task.prepared_xml_sha256), "xml")]
    assert all(p.exists() for p in prepared)

    other_school = create_api_key(dep, SCHOOL_B, ["documents:issue"])
    assert client.post(
        f"/api/v1/schools/{SCHOOL_B}/signing/documents/{doc_id}/cancel",
        headers={"Authorization": f"Bearer {other_school}"},
    ).status_code == 404  # fmt: skip
    cancelled = client.post(f"{url}/{doc_id}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert not any(p.exists() for p in prepared)  # the prepared drafts are gone
    with Session(dep.engine) as session:
        assert session.get(DocumentRecord, doc_id) is None
    assert not flow.tasks(doc_id)
    assert _sign_pending(world, credential) == []  # nothing left for her token
    assert client.post(f"{url}/{doc_id}/cancel", headers=auth).status_code == 404

    again = client.post(url, json={"document": doc, "signers": {"homeroom_teacher": signer_id}}, headers=auth)
    assert _sign_pending(world, credential) == ["issued"]  # the principal's and the seal's keys are the server's
    refused = client.post(f"{url}/{again.json()['id']}/cancel", headers=auth)
    assert refused.status_code == 409 and "thu hồi" in refused.text
