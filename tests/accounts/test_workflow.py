"""The approval workflow with real signatures: drafts → homeroom check and signature → the principal's batch
approval → sealed and issued; a failure that says what to do; retry; correction that supersedes; signed revocation.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlmodel import Session, select

import schemas
from jobs import approval
from jobs import batches as jobs
from ledger.entry import Entry
from registry.records import DocumentRecord
from sealtrail.ledgerwiring import audit_deployment, ledger_for
from signer.storage import BlobStore
from tests.accounts.conftest import SCHOOL_A, World, finish_batch, teacher_signed
from workflow import operations as wf
from workflow.states import State, Transition, WorkflowError, WorkItem, find_move

pytestmark = pytest.mark.slow


def test_state_machine_allows_each_step_only_to_its_role() -> None:
    assert find_move("check", "draft", "homeroom_teacher").target == State.CHECKED
    assert find_move("approve", "teacher_signed", "principal").target == State.APPROVED
    with pytest.raises(WorkflowError, match="principal"):
        find_move("check", "draft", "principal")
    with pytest.raises(WorkflowError, match="not possible from state draft"):
        find_move("approve", "draft", "principal")  # the teacher has not signed yet
    with pytest.raises(WorkflowError):
        find_move("issue", "approved", "principal")  # only the system seals and issues


def _items(world: World) -> dict[str, WorkItem]:
    with Session(world.dep.engine) as session:
        return {i.holder_personal_id or i.id: i for i in session.exec(select(WorkItem)).all()}


def _names(dep, pdfsig_out: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The roles of the signatures pdfsig lists, in the order it lists them (the order they were applied)."""
    names = {
        str(dep.signing_keys[r].certificate.subject.native["common_name"]): r
        for r in ("homeroom_teacher", "principal", "seal")
    }
    found = re.findall(r"Signer Certificate Common Name: (.+)", pdfsig_out)
    return [names.get(n.strip(), n.strip()) for n in found]


def _trust(world: World, tmp: Path) -> tuple[Path, Path]:
    pki = world.dep.dev_pki
    (tmp / "root.pem").write_bytes(pem.armor("CERTIFICATE", pki.root.dump()))
    (tmp / "ca.pem").write_bytes(pem.armor("CERTIFICATE", pki.issuing_ca.dump()))
    return tmp / "root.pem", tmp / "ca.pem"


def test_class_goes_from_drafts_to_issued_with_a_failure_a_retry_a_correction_and_a_revocation(
    world: World, tmp_path: Path
) -> None:
    dep = world.dep
    klass = schemas.load_sample("class_9a1")
    registrar, teacher, principal = (world.login(f"{r}-a") for r in ("registrar", "homeroom_teacher", "principal"))
    csrf = {r: world.csrf[f"{r}-a"] for r in ("registrar", "homeroom_teacher", "principal")}

    # 1. drafts; a second version of one keeps the first to show what changed
    made = registrar.post(
        f"/api/v1/schools/{SCHOOL_A}/work-items", json=klass, headers={"X-CSRF-Token": csrf["registrar"]}
    )
    assert made.status_code == 201, made.text
    changed = copy.deepcopy(klass[1])
    changed["years"][0]["homeroom_comment"] = "Chăm ngoan, tiến bộ rõ."
    again = registrar.post(
        f"/api/v1/schools/{SCHOOL_A}/work-items", json=[changed], headers={"X-CSRF-Token": csrf["registrar"]}
    )
    assert again.json()["items"][0]["version"] == 2
    items = _items(world)
    assert len(items) == 3
    second = items[klass[1]["holder"]["personal_id"]]
    detail = principal.get(f"/can-bo/{SCHOOL_A}/ho-so/{second.id}")
    assert "years[0].homeroom_comment" in detail.text and "Chăm ngoan, tiến bộ rõ." in detail.text
    ids = [i.id for i in items.values()]

    # 2. the principal cannot approve drafts; nothing moves
    refused = principal.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": ids, "csrf_token": csrf["principal"]})
    assert refused.status_code == 303 and "loi=1" in refused.headers["location"]
    assert {i.state for i in _items(world).values()} == {"draft"}

    # 3. the homeroom teacher checks and signs the class: the teacher's signature is applied now, the principal's
    # and the seal's steps wait for the approval
    for action in ("kiem-tra", "ky"):
        r = teacher.post(
            f"/can-bo/{SCHOOL_A}/ho-so/{action}", data={"items": ids, "csrf_token": csrf["homeroom_teacher"]}
        )
        assert r.status_code == 303 and "loi" not in r.headers["location"], r.headers["location"]
    queue = principal.get(f"/can-bo/{SCHOOL_A}/hang-doi?lop=9A1&nam=2024-2025")
    assert queue.text.count('class="state-teacher_signed"') == 3, queue.text
    flow = wf.signing_flow(dep)
    items = _items(world)
    blobs = BlobStore(dep.settings.documents_dir)
    for item in items.values():
        assert [(t.role, t.status) for t in flow.tasks(item.doc_id)] == [
            ("homeroom_teacher", "done"), ("principal", "held"), ("seal", "held")
        ]  # fmt: skip
    teacher_pdf = tmp_path / "gvcn.pdf"
    ids_doc = str(items[klass[0]["holder"]["personal_id"]].doc_id)
    teacher_pdf.write_bytes(blobs.get(str(flow.tasks(ids_doc)[0].output_pdf_sha256), "pdf"))
    out = subprocess.run(["pdfsig", str(teacher_pdf)], capture_output=True, text=True, timeout=120).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 1 and _names(dep, out) == ["homeroom_teacher"], out
    with Session(dep.engine) as session:
        assert session.get(DocumentRecord, ids_doc).status == "pending"  # not issued, not in the log

    # 4. one pupil's data is changed behind the workflow's back after the teacher signed: the batch refuses that
    # document (no principal signature on it) with what to do, and issues the others
    unlucky = klass[2]["holder"]["personal_id"]
    with Session(dep.engine) as session:
        row = session.get(WorkItem, items[unlucky].id)
        data = copy.deepcopy(row.data)
        data["years"][0]["homeroom_comment"] = "Sửa thẳng trong cơ sở dữ liệu"
        row.data = data
        session.add(row)
        session.commit()
    started = principal.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": ids, "csrf_token": csrf["principal"]})
    assert started.status_code == 303 and "/lo-ky/" in started.headers["location"]
    progress = finish_batch(world, started.headers["location"].rsplit("/", 1)[1])
    assert progress["state"] == "failed" and progress["counts"]["issued"] == 2 and progress["counts"]["failed"] == 1
    done = principal.get(started.headers["location"]).text
    assert "có 1 hồ sơ lỗi" in done and "thay đổi sau khi GVCN ký" in done and "trả lại" in done
    items = _items(world)
    assert items[unlucky].state == "teacher_signed" and "GVCN" in str(items[unlucky].last_error)
    assert [t.status for t in flow.tasks(items[unlucky].doc_id)] == ["done", "held", "held"]  # no principal signature
    issued = [i for i in items.values() if i.state == "issued"]
    assert len(issued) == 2

    # 5. the teacher takes it back (its teacher-signed document is withdrawn), signs the data again, and the
    # principal approves it
    stale_doc = items[unlucky].doc_id
    for action in ("tra-lai", "kiem-tra", "ky"):
        r = teacher.post(
            f"/can-bo/{SCHOOL_A}/ho-so/{action}",
            data={"items": [items[unlucky].id], "csrf_token": csrf["homeroom_teacher"]},
        )
        assert "loi" not in r.headers["location"], r.headers["location"]
    with Session(dep.engine) as session:
        assert session.get(DocumentRecord, stale_doc) is None and not flow.tasks(stale_doc)
    retry = principal.post(
        f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": [items[unlucky].id], "csrf_token": csrf["principal"]}
    )
    assert finish_batch(world, retry.headers["location"].rsplit("/", 1)[1])["state"] == "done"
    assert "Đã ký và cấp xong" in principal.get(retry.headers["location"]).text
    items = _items(world)
    assert {i.state for i in items.values()} == {"issued"}
    with Session(dep.engine) as session:
        steps = session.exec(select(Transition).where(Transition.item_id == items[unlucky].id)).all()
    assert [s.action for s in steps] == [
        "create", "check", "teacher_sign", "approve", "signing_failed", "return", "check", "teacher_sign", "approve",
        "seal", "issue",
    ]  # fmt: skip
    assert [s.actor for s in steps][1:4] == ["homeroom_teacher-a", "homeroom_teacher-a", "principal-a"]

    with Session(dep.engine) as session:
        records = {r.id: r for r in session.exec(select(DocumentRecord)).all()}
    first = records[str(items[klass[0]["holder"]["personal_id"]].doc_id)]
    assert first.id == ids_doc
    pdf = tmp_path / "hocba.pdf"
    pdf.write_bytes(blobs.get(str(first.sha256_pdf), "pdf"))
    assert pdf.read_bytes().startswith(teacher_pdf.read_bytes())  # the teacher's revision, untouched, comes first
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=120).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 3, out
    assert _names(dep, out) == ["homeroom_teacher", "principal", "seal"], out

    # 6. a correction after issue supersedes the original once it is issued itself
    second_doc = str(items[klass[1]["holder"]["personal_id"]].doc_id)
    fixed = copy.deepcopy(changed)
    fixed["years"][0]["sessions_absent"] = 7
    corr = registrar.post(
        f"/api/v1/schools/{SCHOOL_A}/documents/{second_doc}/correction", json=fixed,
        headers={"X-CSRF-Token": csrf["registrar"]},
    )  # fmt: skip
    assert corr.status_code == 201 and corr.json()["supersedes"] == second_doc
    new_id = corr.json()["id"]
    page = principal.get(f"/can-bo/{SCHOOL_A}/ho-so/{new_id}").text  # what changed against the superseded document
    assert f"văn bản được đính chính <code>{second_doc}</code>" in page
    assert page.count("<ins>") == 1 and "years[0].sessions_absent" in page and "<ins>7</ins>" in page, page
    queue = principal.get(f"/can-bo/{SCHOOL_A}/hang-doi").text
    assert "1 thay đổi" in queue
    for action in ("kiem-tra", "ky"):
        teacher.post(
            f"/can-bo/{SCHOOL_A}/ho-so/{action}", data={"items": [new_id], "csrf_token": csrf["homeroom_teacher"]}
        )
    batch = principal.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": [new_id], "csrf_token": csrf["principal"]})
    assert finish_batch(world, batch.headers["location"].rsplit("/", 1)[1])["state"] == "done"

    # 7. revocation: reason required, principal or school admin, signed with the seal, logged
    admin = world.login("school_admin-a")
    csrf["school_admin"] = world.csrf["school_admin-a"]
    no_reason = admin.post(
        f"/can-bo/{SCHOOL_A}/van-ban/{first.id}/thu-hoi", data={"reason": "", "csrf_token": csrf["school_admin"]}
    )
    assert "loi=1" in no_reason.headers["location"]
    revoked = admin.post(
        f"/can-bo/{SCHOOL_A}/van-ban/{first.id}/thu-hoi",
        data={"reason": "Cấp nhầm học bạ của học sinh khác", "csrf_token": csrf["school_admin"]},
    )
    assert revoked.status_code == 303 and "loi" not in revoked.headers["location"]

    ledger, _ = ledger_for(dep)
    with Session(dep.engine) as session:
        records = {r.id: r for r in session.exec(select(DocumentRecord)).all()}
    with dep.engine.connect() as conn:
        entries = [Entry.parse(ledger.entry(conn, i)) for i in range(ledger.size(conn))]
    assert (
        records[first.id].status == "revoked" and records[first.id].status_reason == "Cấp nhầm học bạ của học sinh khác"
    )
    (revoke_entry,) = [e for e in entries if e.type == "revoke"]
    assert revoke_entry.doc_id == first.id and revoke_entry.refers == first.leaf_index
    statement = tmp_path / "thu-hoi.xml"
    statement.write_bytes(blobs.get(revoke_entry.xml_sha256, "xml"))
    assert "Cấp nhầm học bạ".encode() in statement.read_bytes()
    root, ca = _trust(world, tmp_path)
    from tests.signing.test_xades import ID_ATTRS

    args = ["xmlsec1", "--verify", "--node-id", "sig-seal", "--trusted-pem", str(root), "--untrusted-pem", str(ca)]
    for attr in ID_ATTRS:
        args += ["--id-attr:Id", attr]
    check = subprocess.run([*args, str(statement)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "OK" in check.stderr, check.stderr
    again = admin.post(
        f"/can-bo/{SCHOOL_A}/van-ban/{first.id}/thu-hoi",
        data={"reason": "lần nữa cho chắc", "csrf_token": csrf["school_admin"]},
    )
    assert "loi=1" in again.headers["location"]  # already revoked: no second entry
    assert records[second_doc].status == "superseded"
    (sup,) = [e for e in entries if e.type == "supersede"]
    assert records[second_doc].superseded_by == sup.doc_id and sup.refers == records[second_doc].leaf_index
    (correction,) = [i for i in _items(world).values() if i.supersedes == second_doc]
    assert correction.doc_id == sup.doc_id and records[sup.doc_id].status == "issued"

    # 8. the public page says so, and the whole installation still audits clean
    public = world.client().get(f"/v/{records[first.id].token}")
    assert "thu hồi" in public.text.lower()
    assert audit_deployment(dep) == []
    export = admin.get(f"/can-bo/{SCHOOL_A}/nhat-ky?dinh-dang=json")
    actions = {row["action"] for row in export.json()}
    assert {
        "workflow.submit",
        "workflow.check",
        "workflow.approve",
        "sign.issued",
        "sign.failed",
        "document.revoke",
    } <= actions


def test_two_principals_approving_the_same_items_at_once_move_them_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale read cannot move an item: the state change is conditional on the state that was read."""
    import threading

    from accounts import service

    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    engine = world.dep.engine

    def actor(username: str):  # type: ignore[no-untyped-def]
        person = service.person_by_username(engine, username)
        assert person is not None
        return service.actor_for(engine, person, "staff")

    ids = teacher_signed(world, schemas.load_sample("class_9a1")[:1])
    principal = actor("principal-a")
    outcomes: list[str] = []
    barrier = threading.Barrier(4, timeout=30)
    waited: set[int] = set()
    real_find_move = wf.find_move

    def find_move_after_everyone_has_read(*args: str):  # type: ignore[no-untyped-def]
        if threading.get_ident() not in waited:  # every thread has read the item before anyone writes
            waited.add(threading.get_ident())
            barrier.wait()
        return real_find_move(*args)

    monkeypatch.setattr(wf, "find_move", find_move_after_everyone_has_read)

    def approve() -> None:
        try:
            approval.start_batch(ctx, None, principal, SCHOOL_A, ids[:1])
            outcomes.append("ok")
        except (WorkflowError, Exception) as exc:  # a database lock error is also a refusal
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("ok") == 1, outcomes
    with Session(engine) as session:
        approvals = session.exec(select(Transition).where(Transition.action == "approve")).all()
    with engine.connect() as conn:
        batches = conn.execute(select(jobs.batches.c.id)).all()
    assert len(approvals) == 1 and len(batches) == 1
