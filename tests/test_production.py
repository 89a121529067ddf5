"""Production that a Sở can run (#21): a verification-only instance from settings alone, `sealtrail init`, `serve`
refusing to start without what production needs, and a wrong PIN never tried again by readiness probes.

Documents are issued by a development installation; the production instance trusts that PKI's root only because
its SEALTRAIL_TRUST_DIR holds it (production never reads the dev PKI)."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import pem
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sealtrail.settings import Settings
from signer.issue import IssuedDocument
from tests.conftest import SoftHsm, free_port


@dataclass
class Prod:
    settings: Settings
    env: dict[str, str]
    docs: list[IssuedDocument]
    dev_root_sha256: str
    client: TestClient


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    from sealtrail.web.app import create_app
    from tests.verifier.conftest import installation
    from verifier.trustlist import fingerprint

    data = tmp_path_factory.mktemp("prod")
    trust = data / "trust"
    trust.mkdir()
    with installation(data) as (dep, docs):
        (trust / "root.pem").write_bytes(pem.armor("CERTIFICATE", dep.dev_pki.root.dump()))
        (trust / "ca.der").write_bytes(dep.dev_pki.issuing_ca.dump())
        root_sha = fingerprint(dep.dev_pki.root)
        tsa = dep.dev_pki.tsa_url
        origin = dep.settings.log_origin
    env = {
        "SEALTRAIL_MODE": "production",
        "SEALTRAIL_DATA_DIR": str(data),
        "SEALTRAIL_TRUST_DIR": str(trust),
        "SEALTRAIL_TIMESTAMP_URLS": f'["{tsa}"]',
        "SEALTRAIL_LOG_ORIGIN": origin,
        "SEALTRAIL_PUBLIC_BASE_URL": "https://xacthuc.sogd.example.vn",
    }
    settings = Settings(
        mode="production",
        data_dir=data,
        trust_dir=trust,
        timestamp_urls=[tsa],
        log_origin=origin,
        public_base_url="https://xacthuc.sogd.example.vn",
    )
    operator = ("127.0.0.1", 50000)  # an operator's address: /readyz gives its details only to SEALTRAIL_METRICS_ALLOW
    yield Prod(settings, env, docs, root_sha, TestClient(create_app(settings), client=operator))


def test_verification_only_instance_verifies_uploads(prod: Prod) -> None:
    for doc in prod.docs[:2]:
        for name, data in (("d.pdf", doc.pdf), ("d.xml", doc.xml)):
            response = prod.client.post("/api/v1/verify", files={"file": (name, data)})
            assert response.status_code == 200, response.text
            assert response.json()["verdict"] == "valid", (name, response.json()["reasons"])
    page = prod.client.post("/kiem-tra", files={"file": ("d.pdf", prod.docs[0].pdf)})
    assert page.status_code == 200 and "HỢP LỆ" in page.text
    public = prod.client.get(f"/v/{prod.docs[0].token}")  # the QR page
    assert public.status_code == 200 and "HỢP LỆ" in public.text


def test_readyz_reports_the_trust_list_and_what_issuing_lacks(prod: Prod) -> None:
    response = prod.client.get("/readyz")
    checks = response.json()["checks"]
    assert checks["trust"]["status"] == "ok", checks["trust"]
    assert checks["trust"]["detail"].startswith("1 roots, 1 intermediates")
    assert prod.dev_root_sha256 in checks["trust"]["detail"] and "earliest root expiry 20" in checks["trust"]["detail"]
    assert checks["issuing"]["status"] == "warn" and "SEALTRAIL_KEY_BACKEND=pkcs11" in checks["issuing"]["detail"]
    assert "keys" not in checks  # no key backend is tried on a verification-only instance
    assert checks["tsa:0"]["status"] == "warn"  # the TSA is down: issuing would need it, verifying does not
    assert response.status_code == 200, checks


def test_production_trusts_only_its_trust_list(prod: Prod, tmp_path: Path) -> None:
    """The same documents checked by a production instance whose trust list holds another root: not valid."""
    from cryptography.hazmat.primitives import serialization

    from sealtrail.deployment import Deployment
    from tests.verifier.test_trustlist import make_ca, vn_name

    other, _ = make_ca(vn_name("Some Other Root"))
    (tmp_path / "other.pem").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    dep = Deployment(prod.settings.model_copy(update={"trust_dir": tmp_path}))
    assert [c.subject.native["common_name"] for c in dep.trust_roots] == ["Some Other Root"]
    assert dep.pdf_verifier.verify(prod.docs[0].pdf).verdict != "valid"
    assert dep.xml_verifier.verify(prod.docs[0].xml).verdict != "valid"


def test_cli_verify_and_export_trust_read_the_same_list(
    prod: Prod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealtrail.cli import app
    from verifier.offline import TrustBundle
    from verifier.trustlist import fingerprint

    for key, value in prod.env.items():
        monkeypatch.setenv(key, value)
    pdf = tmp_path / "d.pdf"
    pdf.write_bytes(prod.docs[0].pdf)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(pdf)])
    assert ok.exit_code == 0, ok.output
    bundle = tmp_path / "bundle"
    exported = runner.invoke(app, ["export-trust", str(bundle)])
    assert exported.exit_code == 0, exported.output
    loaded = TrustBundle.load(bundle)
    assert [fingerprint(c) for c in loaded.roots] == [prod.dev_root_sha256]
    assert len(loaded.intermediates) == 1
    offline = runner.invoke(app, ["verify", str(pdf), "--trust", str(bundle / "root.pem")])
    assert offline.exit_code == 0, offline.output
    # a verification-only instance signs no status lists: its bundle cannot confirm a status, and says so
    unsure = runner.invoke(app, ["verify", str(pdf), "--trust", str(bundle)])
    assert unsure.exit_code == 1 and "Cannot be confirmed" in unsure.output
    # without a trust list: a plain message naming the setting, no traceback
    monkeypatch.delenv("SEALTRAIL_TRUST_DIR")
    refused = runner.invoke(app, ["verify", str(pdf)])
    assert refused.exit_code == 2
    assert "SEALTRAIL_TRUST_DIR" in refused.output and "Traceback" not in refused.output
    assert not isinstance(refused.exception, Exception) or isinstance(refused.exception, SystemExit)


def test_serve_refuses_production_without_trust_tsa_and_log_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealtrail.cli import app

    for key in ("SEALTRAIL_TRUST_DIR", "SEALTRAIL_TIMESTAMP_URLS", "SEALTRAIL_LOG_ORIGIN", "SEALTRAIL_PUBLIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SEALTRAIL_MODE", "production")
    monkeypatch.setenv("SEALTRAIL_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 2
    for setting in (
        "SEALTRAIL_TRUST_DIR",
        "SEALTRAIL_TIMESTAMP_URLS",
        "SEALTRAIL_LOG_ORIGIN",
        "SEALTRAIL_PUBLIC_BASE_URL",
        "sealtrail init",
    ):
        assert setting in result.output, setting


def test_init_makes_keys_once_and_prints_fingerprints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealtrail.cli import app
    from sealtrail.install import production_problems

    data = tmp_path / "data"
    trust = tmp_path / "trust"
    trust.mkdir()
    env = {
        "SEALTRAIL_MODE": "production",
        "SEALTRAIL_DATA_DIR": str(data),
        "SEALTRAIL_TRUST_DIR": str(trust),
        "SEALTRAIL_TIMESTAMP_URLS": '["http://127.0.0.1:9/tsa"]',
        "SEALTRAIL_LOG_ORIGIN": "xacthuc.sogd.example.vn/log",
        "SEALTRAIL_PUBLIC_BASE_URL": "https://xacthuc.sogd.example.vn",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert any("sealtrail init" in p for p in production_problems(Settings()))
    runner = CliRunner()
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    keys = data / "pki" / "keys"
    log_key, qr_key = keys / "log.key.pem", keys / "qrseal.key.pem"
    for path in (log_key, qr_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.output.count("tạo mới / created") == 2
    assert not (data / "pki" / "root.pem").exists()  # no development PKI in production
    before = (log_key.read_bytes(), qr_key.read_bytes())
    second = runner.invoke(app, ["init"])
    assert second.exit_code == 0 and second.output.count("exists, kept") == 2
    assert (log_key.read_bytes(), qr_key.read_bytes()) == before
    fingerprints = [line.split("SHA-256 ")[1].split()[0] for line in first.output.splitlines() if "SHA-256" in line]
    assert len(fingerprints) == 2 and all(f in second.output for f in fingerprints)
    assert production_problems(Settings()) == []


def test_a_wrong_pin_is_tried_once_whatever_readyz_is_asked(
    softhsm: SoftHsm, prod: Prod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hsm_adapters.pkcs11 as p11mod
    from sealtrail.deployment import Deployment
    from sealtrail.observability import readiness

    token = f"pki-pin-{free_port()}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", softhsm.pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("00000000\n")
    logins: list[str] = []
    real_open = p11mod.open_session

    def counting_open(token_: object, config: object) -> object:
        logins.append("C_Login")
        return real_open(token_, config)  # the real SoftHSM2 login, counted

    monkeypatch.setattr(p11mod, "open_session", counting_open)
    dep = Deployment(
        prod.settings.model_copy(
            update={"key_backend": "pkcs11", "pkcs11_pin_file": wrong, "pkcs11_token_label": token}
        )
    )
    for _ in range(3):
        checks = readiness(dep)
        assert checks["keys"]["status"] == "fail" and "PIN" in checks["keys"]["detail"]
    assert logins == ["C_Login"]
    wrong.write_text(softhsm.pin + "\n")  # the PIN file corrected: tried again (no keys on this token, though)
    import os

    os.utime(wrong, ns=(wrong.stat().st_mtime_ns + 10**9,) * 2)
    checks = readiness(dep)
    assert len(logins) == 2 and "PIN" not in checks["keys"]["detail"]
