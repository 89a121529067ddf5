"""Each signer's step on its own: a homeroom teacher with a registered USB-token key signs through the signing API
(the agent's calls), the principal's batch then adds the principal's signature and the seal; school software starts
and cancels documents for signers' own keys over HTTP with a scoped API key."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlmodel import Session

import schemas
from hsm_adapters.soft import SoftKeyBackend
from ledger.registry import DocumentRecord
from sealtrail.accounts import workflow as wf
from sealtrail.api import create_api_key
from sealtrail.signing_flow import register_signer
from signer.storage import BlobStore
from signer.workflow import WorkItem
from tests.accounts.conftest import SCHOOL_A, SCHOOL_B, World, finish_batch, staff_actor

pytestmark = pytest.mark.slow


def _register(world: World, username: str | None, role: str = "homeroom_teacher") -> tuple[str, str]:
    person = staff_actor(world, username).person_id if username else None
    row, credential = register_signer(
        world.dep.engine, school_code=SCHOOL_A, role=role, display_name="Cô Lan",
        certificate_pem=pem.armor("CERTIFICATE", world.dep.dev_pki.cert(role).dump()), person_id=person,
    )  # fmt: skip
    return row.id, credential


def _sign_pending(world: World, credential: str, role: str = "homeroom_teacher") -> list[str]:
    """What `sealtrail agent` does with the token: fetch the pending list, sign both digests, post them."""
    client = world.client()
    auth = {"Authorization": f"Bearer {credential}"}
    key = SoftKeyBackend.from_pkcs12(world.dep.dev_pki.p12_path(role))
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

    batch = wf.start_batch(ctx, None, staff_actor(world, "principal-a"), SCHOOL_A, [item.id])
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
