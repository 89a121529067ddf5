"""Evidence for #21: production mode with a PKI that is not the dev PKI (tests/vnpki.py: a test national root → a
"licensed CA" → seals for two schools and personal certificates for their principals and teachers, with O, OU, L,
ST, CN and UID MST:/CCCD:, its own OCSP, CRL and TSA on loopback), keys in SoftHSM2 (a token per school),
PostgreSQL.

Both schools issue with their own keys; every signer certificate chains to the test root for `openssl verify` and
NSS `vfychain`, and every XAdES signature verifies for xmlsec1, with only that root trusted (never with a look-alike
root); school A's document sealed with school B's certificate is refused before signing, and, signed anyway by a
rogue signer, is invalid; a wrong PIN is offered to a token once."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

import schemas
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from tests.conftest import SoftHsm, free_port
from tests.vnpki import SCHOOLS, TestPki, create_test_pki

TOKENS = {"A": "vn-school-a", "B": "vn-school-b"}
ROLE_LABELS = {"seal": "seal", "principal": "principal", "homeroom_teacher": "teacher"}


@dataclass
class World:
    pki: TestPki
    dep: Deployment
    env: dict[str, str]
    root_pem: Path
    ca_pem: Path
    issued: dict[str, Any]
    qr_fingerprint: str


def _doc(letter: str, register_number: str = "") -> schemas.Document:
    """School ``letter``'s transcript (another register number: other data, so not the earlier document again)."""
    school = SCHOOLS[letter]
    raw = schemas.load_sample("transcript_thcs")
    raw["register_number"] = register_number
    raw["school"] = {**raw["school"], "code": school["code"], "name": school["name"], "province": school["province"]}
    raw["signatories"] = [
        {"role": "homeroom_teacher", "title": "Giáo viên chủ nhiệm", "name": school["teacher"]},
        {"role": "principal", "title": "Hiệu trưởng", "name": school["principal"]},
        {"role": "seal", "title": school["name"], "name": ""},
    ]
    return schemas.parse_document(raw)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsm, pg_available: bool) -> Iterator[World]:
    from hsm_adapters.pkcs11 import import_certificates, import_private_key
    from sealtrail.cli import app
    from sealtrail.devpki import PkiServices
    from sealtrail.install import init_installation
    from tests.conftest import pg_database

    if not pg_available:
        pytest.skip("PostgreSQL is not reachable")
    base = tmp_path_factory.mktemp("realpki")
    port = free_port()
    pki = create_test_pki(base / "pki", f"http://127.0.0.1:{port}")
    services = PkiServices(pki, port=port).start()  # type: ignore[arg-type]  # anything with .animator()
    for letter, token in TOKENS.items():
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", softhsm.pin, "--so-pin", "87654321"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for label in ROLE_LABELS.values():
            config = softhsm.config(token, label)
            name = f"{label}_{letter.lower()}"
            import_private_key(config, pki.key_der(name))
            import_certificates(config, [pki.cert(name), pki.cert("ca")])
    trust = base / "trust"
    trust.mkdir()
    root_pem, ca_pem = trust / "root.pem", trust / "ca.pem"
    root_pem.write_bytes(pki.pem("root"))
    ca_pem.write_bytes(pki.pem("ca"))
    with pg_database() as url:
        env = {
            "SEALTRAIL_MODE": "production",
            "SEALTRAIL_DATA_DIR": str(base / "data"),
            "SEALTRAIL_DATABASE_URL": url,
            "SEALTRAIL_TRUST_DIR": str(trust),
            "SEALTRAIL_TIMESTAMP_URLS": f'["{pki.tsa_url}"]',
            "SEALTRAIL_LOG_ORIGIN": "xacthuc.sogd-hcm.example.vn/log",
            "SEALTRAIL_PUBLIC_BASE_URL": "https://xacthuc.sogd-hcm.example.vn",
            "SEALTRAIL_KEY_BACKEND": "pkcs11",
            "SEALTRAIL_PKCS11_TOKEN_LABEL": TOKENS["A"],
            "SEALTRAIL_PKCS11_PIN_FILE": str(softhsm.pin_file),
            "SEALTRAIL_PKCS11_KEYS": '{"homeroom_teacher": "teacher", "principal": "principal", "seal": "seal"}',
        }
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            dep = Deployment(Settings())
            made = {k.name: k for k in init_installation(dep)}
            assert made["qrseal.key.pem"].created and str(made["qrseal.key.pem"].path).startswith("hsm:")
            assert not (base / "data" / "pki" / "keys" / "qrseal.key.pem").exists()  # the QR key is on the token
            again = {k.name: k for k in init_installation(dep)}
            assert not again["qrseal.key.pem"].created
            assert again["qrseal.key.pem"].fingerprint == made["qrseal.key.pem"].fingerprint
            runner = CliRunner()
            for letter, token in TOKENS.items():
                school = SCHOOLS[letter]
                for role, label in ROLE_LABELS.items():
                    cert = base / f"{label}_{letter}.pem"
                    cert.write_bytes(pki.pem(f"{label}_{letter.lower()}", "ca"))
                    args = ["identity", "add", "--org", school["code"], "--org-name", school["name"], "--role", role]
                    args += ["--key", f"hsm:{token}/{label}", "--cert", str(cert)]
                    if role != "seal":
                        args += ["--holder", school["principal" if role == "principal" else "teacher"]]
                    result = runner.invoke(app, args)
                    assert result.exit_code == 0, result.output
            issued = {letter: dep.make_issuer(SCHOOLS[letter]["code"]).issue(_doc(letter)) for letter in SCHOOLS}
            dep.publish_checkpoint()
            yield World(pki, dep, env, root_pem, ca_pem, issued, made["qrseal.key.pem"].fingerprint)
    services.stop()


def _signer_certs(pdf: bytes) -> list[Any]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf))
    return [sig.signer_cert for sig in reader.embedded_signatures]


def test_both_schools_issue_with_their_own_keys_and_verify(world: World, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from sealtrail.web.app import create_app

    for letter, doc in world.issued.items():
        names = [c.subject.native["common_name"] for c in _signer_certs(doc.pdf)]
        school = SCHOOLS[letter]
        assert names == [school["teacher"], school["principal"], school["name"]]
        for verify, data in ((world.dep.pdf_verifier.verify, doc.pdf), (world.dep.xml_verifier.verify, doc.xml)):
            report = verify(data)
            assert report.verdict == "valid", [r.en for r in report.reasons]
    client = TestClient(create_app(world.dep.settings), client=("127.0.0.1", 50000))  # operator: /readyz details
    for doc in world.issued.values():
        answer = client.post("/api/v1/verify", files={"file": ("d.pdf", doc.pdf)}).json()
        assert answer["verdict"] == "valid", answer["reasons"]
        assert answer["document"]["status"] == "issued"
    # the QR seals were made by the key on the token; the exported bundle's key checks them offline
    from cryptography.hazmat.primitives import serialization

    from verifier.offline import TrustBundle
    from verifier.qrseal import check_qr

    bundle_dir = tmp_path / "bundle"
    world.dep.export_trust(bundle_dir)
    bundle = TrustBundle.load(bundle_dir)
    (key,) = bundle.qr_keys.values()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(spki).hexdigest().upper() == world.qr_fingerprint
    for doc in world.issued.values():
        check = check_qr(doc.qr_payload, bundle.qr_keys, bundle.hosts)
        assert check.claims is not None and check.claims.doc_id == doc.doc_id and not check.warnings
    ready = client.get("/readyz").json()["checks"]
    assert ready["trust"]["status"] == "ok" and "1 roots, 1 intermediates" in ready["trust"]["detail"]
    assert ready["identities"] == {"status": "ok", "detail": "6 active signing identities"}


def test_every_signature_chains_to_the_test_root_for_openssl(world: World, tmp_path: Path) -> None:
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    lookalike_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = cx509.load_pem_x509_certificate(world.root_pem.read_bytes())
    lookalike = (
        cx509.CertificateBuilder()
        .subject_name(root.subject)
        .issuer_name(root.subject)
        .public_key(lookalike_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(root.not_valid_before_utc)
        .not_valid_after(root.not_valid_after_utc)
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(lookalike_key, hashes.SHA256())
    )
    fake_root = tmp_path / "lookalike.pem"
    fake_root.write_bytes(lookalike.public_bytes(serialization.Encoding.PEM))
    checked = 0
    for doc in world.issued.values():
        for cert in _signer_certs(doc.pdf):
            path = tmp_path / f"signer{checked}.pem"
            path.write_bytes(cx509.load_der_x509_certificate(cert.dump()).public_bytes(serialization.Encoding.PEM))
            ok = subprocess.run(
                ["openssl", "verify", "-x509_strict", "-CAfile", str(world.root_pem), "-untrusted", str(world.ca_pem),
                 str(path)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stdout + ok.stderr
            fake = subprocess.run(
                ["openssl", "verify", "-CAfile", str(fake_root), "-untrusted", str(world.ca_pem), str(path)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert fake.returncode != 0  # same name, another key: not the root
            checked += 1
    assert checked == 6
    # NSS (Debian libnss3-tools' vfychain): the same chains with only the test root as trust anchor
    nssdb = tmp_path / "nssdb"
    nssdb.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, timeout=60)
    (tmp_path / "ca.der").write_bytes(world.pki.cert("ca").dump())
    (tmp_path / "root.der").write_bytes(world.pki.cert("root").dump())
    (tmp_path / "lookalike.der").write_bytes(lookalike.public_bytes(serialization.Encoding.DER))
    for doc in world.issued.values():
        for n, cert in enumerate(_signer_certs(doc.pdf)):
            leaf = tmp_path / f"leaf{n}.der"
            leaf.write_bytes(cert.dump())
            for anchor, good in (("root.der", True), ("lookalike.der", False)):
                result = subprocess.run(
                    ["vfychain", "-d", f"sql:{nssdb}", "-pp", "-u", "4", str(leaf), str(tmp_path / "ca.der"),
                     "-t", str(tmp_path / anchor)],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                output = result.stdout + result.stderr
                assert (result.returncode == 0 and "Chain is good!" in output) is good, (anchor, output)
    # the XML's XAdES signatures, for xmlsec1 with only the test root (then only the look-alike) trusted
    from lxml import etree

    from signer.xades import DS_NS, XADES_NS

    id_attrs = ["urn:sealtrail:signed:1:DuLieu", f"{XADES_NS}:SignedProperties", f"{DS_NS}:KeyInfo",
                f"{DS_NS}:SignatureValue", f"{DS_NS}:Signature"]  # fmt: skip
    for letter, doc in world.issued.items():
        xml = tmp_path / f"{letter}.xml"
        xml.write_bytes(doc.xml)
        ids = [n.get("Id") for n in etree.fromstring(doc.xml).iter(f"{{{DS_NS}}}Signature")]
        assert len(ids) == 3
        for node_id in ids:
            for root_file, good in ((world.root_pem, True), (fake_root, False)):
                args = ["xmlsec1", "--verify", "--node-id", str(node_id), "--trusted-pem", str(root_file),
                        "--untrusted-pem", str(world.ca_pem)]  # fmt: skip
                for attr in id_attrs:
                    args += ["--id-attr:Id", attr]
                result = subprocess.run([*args, str(xml)], capture_output=True, text=True, timeout=60)
                assert (result.returncode == 0 and "OK" in result.stderr) is good, (node_id, good, result.stderr)
    # the look-alike put into the trust folder is rejected there too
    from verifier.trustlist import build_trust_list

    folder = tmp_path / "trust"
    folder.mkdir()
    (folder / "root.pem").write_bytes(world.root_pem.read_bytes())
    (folder / "lookalike.pem").write_bytes(fake_root.read_bytes())
    trust = build_trust_list(directory=folder)
    assert trust.roots == [] and len(trust.rejected) == 2  # one name, two keys: neither is trusted


def test_school_a_document_sealed_with_school_b_certificate(world: World) -> None:
    from signer.precheck import SigningRefused

    dep = world.dep
    issuer_a = dep.make_issuer(SCHOOLS["A"]["code"])
    keys_b = dep.keys_for_issuer(SCHOOLS["B"]["code"])
    rogue = dataclasses.replace(issuer_a, keys={**issuer_a.keys, "seal": keys_b["seal"]})

    def count() -> int:
        with Session(dep.engine) as session:
            return int(session.exec(select(func.count()).select_from(DocumentRecord)).one())

    before = count()
    with pytest.raises(SigningRefused, match="not registered for role seal at " + SCHOOLS["A"]["code"]):
        rogue.issue(_doc("A", "SVS-0002"))
    assert count() == before  # nothing recorded, nothing signed
    # a signer that skips the check (another program, a tampered install): the verifier binds the seal to A
    forged = dataclasses.replace(rogue, precheck=None).issue(_doc("A", "SVS-0003"))
    for report in (dep.pdf_verifier.verify(forged.pdf), dep.xml_verifier.verify(forged.xml)):
        assert report.verdict == "invalid"
        assert any("not registered for the role the institution's seal" in r.en for r in report.reasons), [
            r.en for r in report.reasons
        ]


def test_a_printed_signer_who_is_not_the_certificate_holder_is_refused(world: World) -> None:
    from signer.precheck import SigningRefused

    doc = _doc("A", "SVS-0004")
    raw = doc.model_dump(mode="json")
    raw["signatories"][1]["name"] = "Người Khác"
    with pytest.raises(SigningRefused, match="the document names 'Người Khác' as signer"):
        world.dep.make_issuer(SCHOOLS["A"]["code"]).issue(schemas.parse_document(raw))


def test_identity_changes_are_audited_and_logged(world: World) -> None:
    from sqlalchemy import text

    from sealtrail.cli import app

    with world.dep.engine.connect() as conn:
        rows = conn.execute(text("SELECT leaf_index FROM audit_events WHERE action = 'key.change' ORDER BY id")).all()
    assert len(rows) == 6 and all(r[0] is not None for r in rows)  # six registrations, each a public log entry
    with pytest.MonkeyPatch.context() as mp:
        for key, value in world.env.items():
            mp.setenv(key, value)
        listed = CliRunner().invoke(app, ["identity", "list", "--org", SCHOOLS["B"]["code"]])
    assert listed.exit_code == 0 and listed.output.count("hsm:vn-school-b/") == 3


def test_a_wrong_pin_for_a_school_token_is_tried_once(
    world: World, softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third school's token (never logged in to by this process): with a wrong PIN file, issuing for it twice and
    asking /readyz does one C_Login in all; the error is permanent and names the PIN file, never the PIN."""
    import hsm_adapters.pkcs11 as p11mod
    from hsm_adapters.base import KeyBackendError
    from registry.identities import add_identity

    token, code = f"vn-school-c-{free_port()}", "79000303"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", softhsm.pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    add_identity(
        world.dep.engine,
        role="seal",
        organisation=code,
        organisation_name=SCHOOLS["B"]["name"],
        key_location=f"hsm:{token}/seal",
        chain=[world.pki.cert("seal_b"), world.pki.cert("ca")],
    )
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("999999\n")
    logins: list[str] = []
    real_open = p11mod.open_session

    def counting_open(token_: object, config: object) -> object:
        logins.append("C_Login")
        return real_open(token_, config)  # the real SoftHSM2 login, counted

    monkeypatch.setattr(p11mod, "open_session", counting_open)
    dep = Deployment(world.dep.settings.model_copy(update={"pkcs11_pin_file": wrong}))
    for _ in range(3):
        with pytest.raises(KeyBackendError, match="PIN") as caught:
            dep.make_issuer(code)
        assert caught.value.transient is False and "999999" not in str(caught.value)
    assert logins == ["C_Login"]
