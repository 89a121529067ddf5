"""The whole way, as a new user sees it: `sealtrail demo --out`, outside tools on its files, the QR's page."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import SEALTRAIL, documents

pytestmark = pytest.mark.slow


def _documents(demo: dict[str, object]) -> list[dict[str, object]]:
    return documents(demo)


def test_demo_issues_transcripts_and_diplomas(demo: dict[str, object]) -> None:
    kinds = {d["kind"] for d in _documents(demo)}
    assert {"transcript", "diploma"} <= kinds
    out = Path(str(demo["out"]))
    assert (out / "trust" / "root.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_pdfsig_finds_every_signature_valid(demo: dict[str, object]) -> None:
    for doc in _documents(demo):
        pdf = Path(str(demo["out"])) / f"{doc['id']}.pdf"
        result = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60)
        text = result.stdout
        count = text.count("Signature #")
        assert count >= 2, text
        assert text.count("Signature Validation: Signature is Valid.") == count, text


def test_qr_decoded_from_rendered_page_opens_a_valid_verdict(demo: dict[str, object], tmp_path: Path) -> None:
    doc = next(d for d in _documents(demo) if d["kind"] == "diploma")
    pdf = Path(str(demo["out"])) / f"{doc['id']}.pdf"
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")], check=True)
    (png,) = tmp_path.glob("p*.png")
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, check=True)
    payload = decoded.stdout.strip()
    url = payload.split("#", 1)[0]
    assert url == doc["url"]
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert "HỢP LỆ" in page.text and "Valid" in page.text
    assert str(doc["id"]) in page.text


def test_unknown_token_is_404(demo: dict[str, object]) -> None:
    response = httpx.get(f"{demo['base']}/v/AAAAAAAAAAAAAAAAAAAAAA", timeout=10)
    assert response.status_code == 404
    assert "Không tìm thấy" in response.text


def test_verify_accepts_the_file_and_rejects_one_flipped_byte(demo: dict[str, object], tmp_path: Path) -> None:
    doc = _documents(demo)[0]
    pdf = Path(str(demo["out"])) / f"{doc['id']}.pdf"
    trust = Path(str(demo["out"])) / "trust" / "root.pem"
    good = subprocess.run([*SEALTRAIL, "verify", str(pdf), "--trust", str(trust)], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(data))
    result = subprocess.run(
        [*SEALTRAIL, "verify", str(bad), "--trust", str(trust), "--json"], capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "invalid"


def test_signed_xml_beside_each_pdf_verifies_and_a_changed_score_does_not(
    demo: dict[str, object], tmp_path: Path
) -> None:
    out = Path(str(demo["out"]))
    trust = out / "trust" / "root.pem"
    for doc in _documents(demo):
        xml = out / f"{doc['id']}.xml"
        good = subprocess.run(
            [*SEALTRAIL, "verify", str(xml), "--trust", str(trust), "--json"], capture_output=True, text=True
        )
        assert good.returncode == 0, good.stdout + good.stderr
        report = json.loads(good.stdout)
        assert report["format"] == "xml" and len(report["signatures"]) >= 2
    doc = next(d for d in _documents(demo) if d["kind"] == "transcript")
    data = (out / f"{doc['id']}.xml").read_bytes()
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(data.replace(b"<year_average>", b"<year_average>1", 1))
    assert tampered.read_bytes() != data
    bad = subprocess.run([*SEALTRAIL, "verify", str(tampered), "--trust", str(trust)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "KHÔNG HỢP LỆ" in bad.stdout or "invalid" in bad.stdout.lower()
    upload = httpx.post(f"{demo['base']}/api/v1/verify", files={"file": ("x.xml", data)}, timeout=60)
    assert upload.status_code == 200 and upload.json()["verdict"] == "valid", upload.text


def test_offline_qr_check_from_the_printed_page(demo: dict[str, object], tmp_path: Path) -> None:
    out = Path(str(demo["out"]))
    doc = next(d for d in _documents(demo) if d["kind"] == "transcript")
    pdf = out / f"{doc['id']}.pdf"
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "2", "-l", "2", str(pdf), str(tmp_path / "p")], check=True)
    (png,) = tmp_path.glob("p*.png")
    trust = ["--trust", str(out / "trust")]
    good = subprocess.run([*SEALTRAIL, "verify-qr", str(png), *trust], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    assert str(doc["id"]) in good.stdout and "hợp lệ" in good.stdout

    text = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True).stdout.strip()
    url, seal = text.split("#", 1)
    forged = f"{url}#{seal[:-3]}{'A' if seal[-3] != 'A' else 'B'}{seal[-2:]}"
    bad = subprocess.run([*SEALTRAIL, "verify-qr", forged, *trust], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "KHÔNG HỢP LỆ" in bad.stdout, bad.stdout + bad.stderr

    lookalike = text.replace("127.0.0.1", "xacthuc-hocba.vn.example", 1)
    phish = subprocess.run([*SEALTRAIL, "verify-qr", lookalike, *trust], capture_output=True, text=True, timeout=120)
    assert phish.returncode == 1 and "CẢNH BÁO" in phish.stdout and "giả mạo" in phish.stdout


def test_export_trust_bundle_is_enough_to_verify_offline(demo: dict[str, object], tmp_path: Path) -> None:
    env = dict(demo["env"])  # type: ignore[call-overload]
    bundle = tmp_path / "bundle"
    made = subprocess.run([*SEALTRAIL, "export-trust", str(bundle)], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert (bundle / "checkpoint").read_text().startswith(env.get("SEALTRAIL_LOG_ORIGIN", "sealtrail.localhost/log"))
    assert "127.0.0.1" in (bundle / "verify-hosts.txt").read_text()
    doc = _documents(demo)[0]
    pdf = Path(str(demo["out"])) / f"{doc['id']}.pdf"
    # A clean environment with no data directory: only the bundle is trusted.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")}
    clean["SEALTRAIL_DATA_DIR"] = str(tmp_path / "empty")
    result = subprocess.run(
        [*SEALTRAIL, "verify", str(pdf), "--trust", str(bundle)], env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "empty").exists()


def test_public_log_serves_a_signed_checkpoint(demo: dict[str, object]) -> None:
    response = httpx.get(f"{demo['base']}/log/checkpoint", timeout=10)
    assert response.status_code == 200
    lines = response.text.split("\n")
    assert int(lines[1]) == len(_documents(demo))
    assert "\n\n— " in response.text


def test_log_proof_verifies_with_nothing_but_the_exported_key(demo: dict[str, object]) -> None:
    from ledger.entry import Entry
    from ledger.note import NoteVerifier
    from ledger.proof import TlogProof

    out = Path(str(demo["out"]))
    vkey = NoteVerifier.from_vkey((out / "trust" / "log.vkey").read_text())
    for doc in _documents(demo):
        proof = TlogProof.parse((out / f"{doc['id']}.tlog-proof").read_bytes())
        page_token = str(doc["url"]).rsplit("/", 1)[1]
        downloaded = httpx.get(f"{demo['base']}/v/{page_token}/tlog-proof", timeout=10)
        assert downloaded.status_code == 200 and downloaded.content.startswith(b"c2sp.org/tlog-proof@v1\n")
        pdf_hash = __import__("hashlib").sha256((out / f"{doc['id']}.pdf").read_bytes()).hexdigest()
        xml_hash = __import__("hashlib").sha256((out / f"{doc['id']}.xml").read_bytes()).hexdigest()
        entries = httpx.get(f"{demo['base']}/log/tile/entries/000.p/{len(_documents(demo))}", timeout=10).content
        leaf = _bundle_entry(entries, proof.index)
        entry = Entry.parse(leaf)
        assert (entry.doc_id, entry.pdf_sha256, entry.xml_sha256) == (doc["id"], pdf_hash, xml_hash)
        checkpoint = proof.verify(leaf, vkey, vkey.name)
        assert checkpoint.size == len(_documents(demo))


def _bundle_entry(bundle: bytes, index: int) -> bytes:
    pos = 0
    for _ in range(index):
        pos += 2 + int.from_bytes(bundle[pos : pos + 2], "big")
    size = int.from_bytes(bundle[pos : pos + 2], "big")
    return bundle[pos + 2 : pos + 2 + size]


def test_ledger_audit_passes_and_catches_a_damaged_file(demo: dict[str, object], tmp_path: Path) -> None:
    import shutil

    env = dict(demo["env"])  # type: ignore[call-overload]
    good = subprocess.run([*SEALTRAIL, "ledger", "audit"], env=env, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    copy = tmp_path / "var"
    shutil.copytree(env["SEALTRAIL_DATA_DIR"], copy)
    victim = next((copy / "documents").rglob("*.pdf"))
    victim.write_bytes(victim.read_bytes()[:-10])
    env["SEALTRAIL_DATA_DIR"] = str(copy)
    bad = subprocess.run([*SEALTRAIL, "ledger", "audit"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "missing or damaged" in bad.stderr
