"""Operations: /readyz with each check, Prometheus /metrics, and JSON logs that never carry personal data or secrets.

One installation per database (SQLite, PostgreSQL) with its keys on a SoftHSM2 token, one transcript issued while
every logger writes JSON at DEBUG level through the service's handler."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import pem
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import schemas
from sealtrail.deployment import Deployment
from sealtrail.devpki import SIGNER_ROLES
from sealtrail.settings import Settings
from signer.redact import MASK, personal_data, redact, register_secret
from tests.conftest import SoftHsm, free_port

log = logging.getLogger("sealtrail.test")


@dataclass
class Installation:
    dep: Deployment
    client: TestClient
    logs: str
    doc_id: str
    holder: schemas.Person
    pin: str
    services: object | None


def _metrics(client: TestClient) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


@pytest.fixture(scope="module")
def inst(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None, softhsm: SoftHsm
) -> Iterator[Installation]:
    from sealtrail.logs import configure_logging
    from sealtrail.web.app import create_app
    from signer.issue import _holder
    from signer.render import Renderer

    token = f"ops-{free_port()}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", softhsm.pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ops"),
        dev_pki_url=f"http://127.0.0.1:{free_port()}",
        database_url=module_database_url,
        key_backend="pkcs11",
        pkcs11_token_label=token,
        pkcs11_pin_file=softhsm.pin_file,
        log_level="DEBUG",
    )
    dep = Deployment(settings)
    pki = dep.dev_pki
    from hsm_adapters.pkcs11 import import_certificates, import_private_key

    for role in SIGNER_ROLES:
        config = dep.pkcs11_config(role)
        import_private_key(config, pem.unarmor((pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
        import_certificates(config, [pki.cert(role), pki.issuing_ca])
    services = dep.start_dev_pki_services()

    raw = schemas.load_sample("transcript_thcs")
    doc = schemas.parse_document(raw)
    holder = _holder(doc)
    assert holder.personal_id and len(holder.personal_id) == 12
    original_render = Renderer.render

    def chatty_render(self, doc, *args, **kwargs):  # type: ignore[no-untyped-def]
        """A careless log line of the kind that creeps into code: the holder's data, the PIN, a traceback."""
        person = _holder(doc)
        log.info("rendering for %s, born %s in %s, ID %s", person.full_name, person.birth_date, person.birth_place,
                 person.personal_id)  # fmt: skip
        log.debug("token PIN is %s", softhsm.pin, extra={"holder": person.full_name})
        try:
            raise ValueError(f"cannot fit the name {person.full_name} ({person.personal_id})")
        except ValueError:
            log.exception("layout problem")
        return original_render(self, doc, *args, **kwargs)

    it: Installation | None = None
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Renderer, "render", chatty_render)
            configure_logging(settings, stream=stream)
            issued = dep.make_issuer().issue(doc)
        from sealtrail.ledgerwiring import publish_checkpoint

        publish_checkpoint(dep)
        logging.getLogger("sealtrail.test").warning("after the issue: CCCD %s", holder.personal_id)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    try:
        client = TestClient(create_app(settings), client=("127.0.0.1", 50000))  # /metrics: loopback allowed
        it = Installation(dep, client, stream.getvalue(), issued.doc_id, holder, softhsm.pin, services)
        yield it
    finally:
        if it is not None and it.services:
            it.services.stop()  # type: ignore[attr-defined]


def test_logs_are_json_lines_without_personal_data_or_secrets(inst: Installation) -> None:
    lines = inst.logs.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    careless = [r for r in records if r["logger"] == "sealtrail.test"]
    assert len(careless) == 4, careless  # the careless lines were written, masked
    assert all(MASK in json.dumps(r, ensure_ascii=False) for r in careless)
    assert any("exc_info" in r and "ValueError" in r["exc_info"] for r in careless)
    h = inst.holder
    for secret in (inst.pin, h.full_name, h.given_name + " ", h.personal_id, "14/03/2010", "2010-03-14", h.birth_place):
        assert secret and secret not in inst.logs, secret
    assert h.full_name.upper() not in inst.logs


def test_the_redaction_rules() -> None:
    register_secret("s3cr3t-pin-4711")
    with personal_data(["Trần Văn Bảo", "Quảng Ngãi"]):
        text = redact("Trần Văn Bảo (TRẦN VĂN BẢO) from Quảng Ngãi, pin=9999, key s3cr3t-pin-4711")
    assert "Bảo" not in text and "BẢO" not in text and "Ngãi" not in text and "9999" not in text
    assert "s3cr3t" not in text
    assert redact("CCCD 079203001234, phone 0912345678, CMND 123456789") == (f"CCCD {MASK}, phone {MASK}, CMND {MASK}")
    assert redact("postgresql://sealtrail:hunter2@db/sealtrail") == f"postgresql://sealtrail:{MASK}@db/sealtrail"
    assert redact("Authorization: Bearer abc.def") == f"Authorization: Bearer {MASK}"
    sha = "a" * 20 + "012345678901" + "b" * 32  # digits inside a hash are not an ID
    assert redact(f"stored {sha}.pdf, leaf 42") == f"stored {sha}.pdf, leaf 42"
    assert redact("Trần Văn Bảo") == "Trần Văn Bảo"  # outside the issue, a name is just text


def test_ready_with_every_check_listed(inst: Installation) -> None:
    response = inst.client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, [(k, c) for k, c in body["checks"].items() if c["status"] != "ok"]
    assert body["status"] == "ready" and response.headers["cache-control"] == "no-store"
    checks = body["checks"]
    assert checks["database"] == {"status": "ok", "detail": inst.dep.engine.dialect.name}
    for role in SIGNER_ROLES:
        assert checks[f"key:{role}"]["status"] == "ok"
        assert checks[f"certificate:{role}"]["status"] == "ok" and "days" in checks[f"certificate:{role}"]["detail"]
        assert checks[f"ocsp:{role}"] == {"status": "ok", "detail": checks[f"ocsp:{role}"]["detail"]}
        assert checks[f"ocsp:{role}"]["detail"].endswith(": good")
    assert checks["tsa:0"]["status"] == "ok"
    assert inst.pin not in response.text
    assert inst.client.get("/healthz").text == "ok"


def test_a_certificate_near_expiry_warns_but_stays_ready(inst: Installation) -> None:
    from sealtrail.web.app import create_app

    settings = inst.dep.settings.model_copy(update={"cert_expiry_warn_days": 100_000})
    response = TestClient(create_app(settings), client=("127.0.0.1", 50000)).get("/readyz")  # details: loopback
    assert response.status_code == 200
    assert {response.json()["checks"][f"certificate:{r}"]["status"] for r in SIGNER_ROLES} == {"warn"}


def test_wrong_pin_makes_the_keys_not_ready_without_showing_it(inst: Installation, tmp_path: Path) -> None:
    from sealtrail.observability import readiness

    token = f"ops-pin-{free_port()}"  # a token this process has not logged in to (PKCS#11 logins are per token)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", inst.pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("00000000\n")
    dep = Deployment(inst.dep.settings.model_copy(update={"pkcs11_pin_file": wrong, "pkcs11_token_label": token}))
    checks = readiness(dep)
    assert checks["keys"]["status"] == "fail" and "PIN" in checks["keys"]["detail"]
    assert "00000000" not in json.dumps(checks) and inst.pin not in json.dumps(checks)
    assert checks["database"]["status"] == "ok"


def test_unreachable_tsa_and_ocsp_make_it_not_ready_and_are_counted(inst: Installation) -> None:
    from sealtrail.observability import readiness

    dead = f"http://127.0.0.1:{free_port()}"
    before = _metrics(inst.client)
    dep = Deployment(inst.dep.settings.model_copy(update={"timestamp_urls": [f"{dead}/tsa"]}))
    checks = readiness(dep)
    assert checks["tsa:0"]["status"] == "fail" and checks["tsa"]["status"] == "fail"
    after = _metrics(inst.client)
    key = f"sealtrail_tsa_errors_total{{url={dead}/tsa}}"
    assert after[key] == before.get(key, 0) + 1

    two = Deployment(inst.dep.settings.model_copy(update={"timestamp_urls": [f"{dead}/tsa", dep.dev_pki.tsa_url]}))
    checks = readiness(two)
    assert checks["tsa:0"]["status"] == "warn" and checks["tsa:1"]["status"] == "ok" and "tsa" not in checks


def test_metrics_count_documents_signing_and_the_ledger(inst: Installation) -> None:
    m = _metrics(inst.client)
    assert m["sealtrail_database_up{}"] == 1
    assert m["sealtrail_documents_issued_total{}"] == 1
    assert m["sealtrail_documents{status=issued}"] == 1
    assert m["sealtrail_ledger_entries{}"] == 1
    assert m["sealtrail_ledger_checkpoint_size{}"] == 1
    assert 0 <= m["sealtrail_ledger_checkpoint_age_seconds{}"] < 600
    for role in SIGNER_ROLES:  # PDF and XML signatures, each timed in the token
        assert m[f"sealtrail_signing_seconds_count{{backend=pkcs11,role={role}}}"] >= 2
    assert m["sealtrail_job_queue_depth{status=todo}"] == 0


def test_job_queue_depth_reads_the_jobs_table_when_there_is_one(inst: Installation) -> None:
    """On PostgreSQL the 0007_jobs migration made procrastinate's real table; on SQLite a stand-in with its columns."""
    import sqlalchemy as sa

    engine = inst.dep.engine
    statuses = ("todo", "todo", "todo", "doing", "succeeded")
    created = "procrastinate_jobs" not in sa.inspect(engine).get_table_names()
    if created:
        sa.Table(
            "procrastinate_jobs",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("queue_name", sa.String(64)),
            sa.Column("task_name", sa.String(64)),
            sa.Column("status", sa.String(16)),
        ).create(engine)
    rows = [{"queue_name": "test", "task_name": "test.depth", "status": s} for s in statuses]
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, status)"
                    " VALUES (:queue_name, :task_name, :status)"
                ),
                rows,
            )
        m = _metrics(inst.client)
        assert m["sealtrail_job_queue_depth{status=todo}"] == 3
        assert m["sealtrail_job_queue_depth{status=doing}"] == 1
    finally:
        with engine.begin() as conn:
            if created:
                conn.execute(sa.text("DROP TABLE procrastinate_jobs"))
            else:
                conn.execute(sa.text("DELETE FROM procrastinate_jobs WHERE task_name = 'test.depth'"))


def test_without_ocsp_and_tsa_it_is_not_ready(inst: Installation) -> None:
    """Runs last: the dev PKI's services stop (OCSP and TSA gone), then start again."""
    assert inst.services is not None, "this test needs the installation's own dev PKI services"
    before = _metrics(inst.client)
    inst.services.stop()  # type: ignore[attr-defined]
    inst.services = None
    from sealtrail import observability

    observability._PROBES.clear()  # the probes' answers are reused for a few seconds: forget the earlier ones
    try:
        response = inst.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        checks = body["checks"]
        assert {checks[f"ocsp:{r}"]["status"] for r in SIGNER_ROLES} == {"fail"}
        assert checks["tsa"]["status"] == "fail" and checks["database"]["status"] == "ok"
        after = _metrics(inst.client)
        ocsp = [k for k in after if k.startswith("sealtrail_ocsp_errors_total")]
        assert ocsp and sum(after[k] - before.get(k, 0) for k in ocsp) == len(SIGNER_ROLES)
    finally:
        inst.services = inst.dep.start_dev_pki_services()
    observability._PROBES.clear()
    assert inst.client.get("/readyz").status_code == 200
