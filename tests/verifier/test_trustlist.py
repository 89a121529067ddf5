"""The trust list (verifier/trustlist.py): the shipped national list, SEALTRAIL_TRUST_DIR in PEM/DER/P7B, look-alike
roots never trusted, `sealtrail trust list|import` and the fingerprint check."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from verifier.trustlist import (
    SHIPPED_VIETNAM,
    TrustListError,
    build_trust_list,
    fingerprint,
    import_certificate,
    shipped_vietnam,
)

NOW = datetime.now(UTC)


def make_ca(name: x509.Name, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None, *, days: int = 3650):
    """A CA certificate (self-signed when ``issuer`` is None) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer else (name, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=2 * days if days < 0 else 1))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def vn_name(cn: str, org: str = "Test National CA Centre") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def pem_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def sha(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def test_shipped_list_matches_its_readme_fingerprints_and_keeps_expired_cas() -> None:
    shipped = shipped_vietnam()
    readme = (SHIPPED_VIETNAM / "README.md").read_text(encoding="utf-8")
    published = dict(re.findall(r"\| `((?:roots|intermediates)/[^`]+)` \|.*\| `([0-9A-F]{64})` \|", readme))
    assert len(published) == len(shipped) == 37
    for source, cert in shipped:
        assert fingerprint(cert) == published[source.removeprefix("vietnam/")], source
    trust = build_trust_list(national=True)
    summary = trust.summary()
    assert summary["roots"] == 10 and summary["intermediates"] == 27
    assert not summary["rejected"]
    # MIC's national root, the 2024-2026 roots and Ban Cơ yếu's G2 root are anchors
    assert {
        "CA918D635BB130BEC97639E6AABF7EDBC4EB1310F8058B9419F467AE0230AD8C",
        "7B3269E7D79AEBBFAE5095F45BBB7074771E690CB7DF02B441062B12F7690ECE",
        "F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8",
    } <= set(summary["root_fingerprints"])  # type: ignore[arg-type]
    # issuing CAs that expired long ago (SAFE-CA 2017, VNPT-CA 2019) stay: old documents must still verify
    intermediates = {fingerprint(c) for c in trust.intermediates}
    assert "2DC2258971BA842F141F5DD0C24D018CD053C959390480891CEBF0AC806AB3D3" in intermediates
    assert "068927B4C1A38AE4DB1E8F59A71A8C643D9DFBB53A674862387BD5AA7386247B" in intermediates
    assert summary["expired_intermediates"] >= 10
    assert str(summary["earliest_root_expiry"]).startswith("2030-03-05")  # Ban Cơ yếu's first root


def test_national_list_only_when_asked() -> None:
    assert build_trust_list().roots == []
    assert len(build_trust_list(national=True).roots) == 10


def test_folder_in_pem_der_and_p7b(tmp_path: Path) -> None:
    root, root_key = make_ca(vn_name("Test Root A"))
    ca, _ = make_ca(vn_name("Test Licensed CA"), (root.subject, root_key))
    other_root, _ = make_ca(vn_name("Test Root B"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "root.der").write_bytes(root.public_bytes(serialization.Encoding.DER))
    (tmp_path / "bundle.p7b").write_bytes(pkcs7.serialize_certificates([ca, other_root], serialization.Encoding.DER))
    (tmp_path / "notes.txt").write_text("not a certificate")
    trust = build_trust_list(directory=tmp_path)
    assert sorted(fingerprint(c) for c in trust.roots) == sorted([sha(root), sha(other_root)])
    assert [fingerprint(c) for c in trust.intermediates] == [sha(ca)]
    assert not trust.rejected
    # PEM, including a PKCS#7 PEM, reads the same
    (tmp_path / "bundle.p7b").unlink()
    (tmp_path / "chain.pem").write_bytes(pem_of(ca) + pem_of(other_root))
    (tmp_path / "p7.pem").write_bytes(pkcs7.serialize_certificates([ca], serialization.Encoding.PEM))
    again = build_trust_list(directory=tmp_path)
    assert len(again.roots) == 2 and len(again.intermediates) == 1


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(TrustListError, match=r"broken\.pem"):
        build_trust_list(directory=tmp_path)


def test_look_alike_of_a_national_root_is_never_trusted(tmp_path: Path) -> None:
    """Same name as 'Vietnam National Root CA', another key: rejected, with or without the national list."""
    real = dict(shipped_vietnam())["vietnam/roots/Vietnam-National-Root-CA_bac8bf60.pem"]
    name = x509.load_der_x509_certificate(real.dump()).subject
    fake, _ = make_ca(name)
    (tmp_path / "vn-root.pem").write_bytes(pem_of(fake))
    for national in (False, True):
        trust = build_trust_list(national=national, directory=tmp_path)
        assert sha(fake) not in {fingerprint(c) for c in trust.roots}
        assert [r.sha256 for r in trust.rejected] == [sha(fake)]
        assert "look-alike" in trust.rejected[0].reason


def test_two_roots_with_one_name_in_the_folder_are_both_rejected(tmp_path: Path) -> None:
    one, _ = make_ca(vn_name("Test Root"))
    two, _ = make_ca(vn_name("Test Root"))
    (tmp_path / "one.pem").write_bytes(pem_of(one))
    (tmp_path / "two.pem").write_bytes(pem_of(two))
    trust = build_trust_list(directory=tmp_path)
    assert trust.roots == []
    assert sorted(r.sha256 for r in trust.rejected) == sorted([sha(one), sha(two)])


def test_dev_roots_come_first_and_a_look_alike_of_them_is_rejected(tmp_path: Path) -> None:
    from asn1crypto import x509 as a509

    dev, _ = make_ca(vn_name("Dev Root"))
    fake, _ = make_ca(vn_name("Dev Root"))
    (tmp_path / "fake.pem").write_bytes(pem_of(fake))
    trust = build_trust_list(
        dev_roots=[a509.Certificate.load(dev.public_bytes(serialization.Encoding.DER))], directory=tmp_path
    )
    assert [fingerprint(c) for c in trust.roots] == [sha(dev)]
    assert [r.sha256 for r in trust.rejected] == [sha(fake)]


def test_import_checks_the_published_fingerprint(tmp_path: Path) -> None:
    root, _ = make_ca(vn_name("Test Root C"))
    file = tmp_path / "download.cer"
    file.write_bytes(root.public_bytes(serialization.Encoding.DER))
    folder = tmp_path / "trust"
    wrong = "00" * 32
    with pytest.raises(TrustListError, match="matches no certificate"):
        import_certificate(file, wrong, folder)
    assert not folder.exists() or not any(folder.iterdir())
    with pytest.raises(TrustListError, match="64 hex"):
        import_certificate(file, "ABCD", folder)
    colon_form = ":".join(sha(root)[i : i + 2] for i in range(0, 64, 2)).lower()
    target, cert = import_certificate(file, colon_form, folder)
    assert target.parent == folder and fingerprint(cert) == sha(root)
    assert [fingerprint(c) for c in build_trust_list(directory=folder).roots] == [sha(root)]
    again, _ = import_certificate(file, sha(root), folder)  # twice: harmless, nothing overwritten
    assert again == target and len(list(folder.iterdir())) == 1


def test_import_refuses_a_look_alike_even_with_its_own_fingerprint(tmp_path: Path) -> None:
    real = dict(shipped_vietnam())["vietnam/roots/Vietnam-National-Root-CA-G3_7b3269e7.pem"]
    fake, _ = make_ca(x509.load_der_x509_certificate(real.dump()).subject)
    file = tmp_path / "g3.pem"
    file.write_bytes(pem_of(fake))
    with pytest.raises(TrustListError, match="look-alike"):
        import_certificate(file, sha(fake), tmp_path / "trust")
    assert not (tmp_path / "trust").exists()


def test_cli_trust_list_and_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealtrail.cli import app

    root, root_key = make_ca(vn_name("Test Root D"))
    ca, _ = make_ca(vn_name("Test Issuing CA D"), (root.subject, root_key))
    (tmp_path / "root.pem").write_bytes(pem_of(root))
    (tmp_path / "ca.pem").write_bytes(pem_of(ca))
    folder = tmp_path / "trust"
    monkeypatch.setenv("SEALTRAIL_MODE", "production")
    monkeypatch.setenv("SEALTRAIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEALTRAIL_TRUST_DIR", str(folder))
    runner = CliRunner()
    empty = runner.invoke(app, ["trust", "list"])
    assert empty.exit_code == 2 and "does not exist" in empty.output
    refused = runner.invoke(app, ["trust", "import", str(tmp_path / "root.pem"), "--sha256", sha(ca)])
    assert refused.exit_code == 1 and "nothing imported" in refused.output
    assert not folder.exists()
    for name, cert in (("root.pem", root), ("ca.pem", ca)):
        done = runner.invoke(app, ["trust", "import", str(tmp_path / name), "--sha256", sha(cert)])
        assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["trust", "list"])
    assert listed.exit_code == 0, listed.output
    assert "1 chứng thư gốc / roots, 1 trung gian" in listed.output
    assert sha(root) in listed.output and sha(ca) in listed.output
    shipped = runner.invoke(app, ["trust", "list", "--shipped"])
    assert shipped.exit_code == 0 and "10 chứng thư gốc" in shipped.output
