"""The public QR page and upload API through the real app: standing of documents, privacy, rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import schemas
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from tests.verifier.conftest import installation, set_status
from verifier.ratelimit import RateLimiter


@pytest.fixture(scope="module")
def issued(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    with installation(tmp_path_factory.mktemp("public"), module_database_url, public_rate_per_minute=600) as installed:
        yield installed


def _client(dep: Deployment) -> TestClient:
    from sealtrail.web.app import create_app

    return TestClient(create_app(dep.settings))


def test_page_shows_the_minimum_and_a_valid_verdict(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    doc = docs[0]
    page = _client(dep).get(f"/v/{doc.token}")
    assert page.status_code == 200
    assert "HỢP LỆ" in page.text and doc.doc_id in page.text
    holder = schemas.parse_document(schemas.load_sample("diploma_thpt")).holder
    assert holder.masked_name in page.text
    assert holder.full_name not in page.text  # a guessed link shows only the masked name
    assert holder.birth_date.strftime("%d/%m/%Y") not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in page.text  # the verdict needs no JavaScript
    import re

    assert re.search(r"Hiệu trưởng — \d\d:\d\d ngày \d\d/\d\d/20\d\d", page.text)  # signing times as people write them


def test_the_date_of_birth_reveals_full_details_and_a_wrong_one_does_not(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, docs = issued
    doc = docs[0]
    holder = schemas.parse_document(schemas.load_sample("diploma_thpt")).holder
    client = _client(dep)
    page = client.get(f"/v/{doc.token}").text
    assert f'action="/v/{doc.token}"' in page and f"/v/{doc.token}/tlog-proof" in page
    wrong = client.post(f"/v/{doc.token}", data={"dob": "01/01/1999"})
    assert wrong.status_code == 200 and "không khớp" in wrong.text and holder.full_name not in wrong.text
    right = client.post(f"/v/{doc.token}", data={"dob": holder.birth_date.strftime("%d/%m/%Y")})
    assert right.status_code == 200 and holder.full_name in right.text
    diploma = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    assert diploma.diploma_number in right.text
    assert holder.personal_id is None or holder.personal_id not in right.text
    assert client.post("/v/AAAAAAAAAAAAAAAAAAAAAAAAAA", data={"dob": "01/01/2000"}).status_code == 404


def test_revoked_and_superseded_documents_say_so(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    set_status(dep, docs[1].doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    set_status(dep, docs[2].doc_id, DocumentStatus.SUPERSEDED, superseded_by=docs[0].doc_id)
    client = _client(dep)
    revoked = client.get(f"/v/{docs[1].token}").text
    assert "KHÔNG HỢP LỆ" in revoked and "02/03/2026" in revoked and "Cấp sai thông tin" in revoked
    superseded = client.get(f"/v/{docs[2].token}").text
    assert "KHÔNG HỢP LỆ" in superseded and docs[0].doc_id in superseded


def test_unknown_tokens_do_the_same_work_as_known_ones(
    issued: tuple[Deployment, list[IssuedDocument]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sealtrail.ledgerwiring as wiring

    dep, docs = issued
    calls: list[str] = []
    real = wiring.prove_record

    def spy(d: Deployment, record: DocumentRecord) -> bool:
        calls.append(record.id)
        return real(d, record)

    monkeypatch.setattr(wiring, "prove_record", spy)
    import verifier.proofcache as proofcache  # the page's default path: proofs cached per checkpoint

    cached_call = proofcache.CachedProver.__call__

    def cached_spy(self: proofcache.CachedProver, record: DocumentRecord) -> bool:
        calls.append(record.id)
        return cached_call(self, record)

    monkeypatch.setattr(proofcache.CachedProver, "__call__", cached_spy)
    client = _client(dep)
    assert client.get(f"/v/{docs[0].token}").status_code == 200
    missing = client.get("/v/AAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert missing.status_code == 404 and "Không tìm thấy" in missing.text
    assert len(calls) == 2  # the unknown token ran a log proof too (on a decoy), like the known one


def test_rate_limit_answers_429_with_retry_after(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    settings = dep.settings.model_copy(update={"public_rate_per_minute": 6})
    from sealtrail.web.app import create_app

    client = TestClient(create_app(settings))
    codes = [client.get(f"/v/{docs[0].token}").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    limited = client.get("/v/AAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_upload_api_checks_pdf_and_xml(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    client = _client(dep)
    pdf = client.post("/api/v1/verify", files={"file": ("a.pdf", docs[0].pdf)})
    assert pdf.status_code == 200 and pdf.json()["verdict"] == "valid" and pdf.json()["format"] == "pdf"
    xml = client.post("/api/v1/verify", files={"file": ("a.xml", docs[0].xml)})
    assert xml.status_code == 200 and xml.json()["verdict"] == "valid" and xml.json()["format"] == "xml"
    junk = client.post("/api/v1/verify", files={"file": ("a.pdf", b"%PDF-1.7 garbage")})
    assert junk.status_code == 200 and junk.json()["verdict"] == "invalid"


def test_token_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.allow("a", now=0.0) == 0 and limiter.allow("a", now=0.0) == 0
    assert limiter.allow("a", now=0.0) == pytest.approx(1.0)
    assert limiter.allow("b", now=0.0) == 0  # clients are independent
    assert limiter.allow("a", now=1.5) == 0


def test_the_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=10)
    for i in range(100):
        limiter.allow(f"10.0.0.{i}", now=0.0)
    assert len(limiter._buckets) == 10


def test_pages_need_no_external_assets(issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    dep, docs = issued
    text = _client(dep).get(f"/v/{docs[0].token}").text
    assert "http://" not in text.replace(dep.settings.public_base_url, "") and "https://" not in text


def _zip(files: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_bulk_zip_gives_one_verdict_per_file_and_a_signed_receipt(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    import hashlib

    from verifier.xml import XmlVerifier

    dep, docs = issued
    tampered = bytearray(docs[0].pdf)
    tampered[len(tampered) // 3] ^= 1
    upload = _zip(
        {
            "a/bang-1.pdf": docs[0].pdf,
            "a/bang-1.xml": docs[0].xml,
            "b/sua.pdf": bytes(tampered),
            "rac.txt": b"hello",
        }
    )
    response = _client(dep).post("/api/v1/verify/bulk", files={"file": ("lo.zip", upload)})
    assert response.status_code == 200, response.text
    body = response.json()
    verdicts = {i["file"]: i["verdict"] for i in body["items"]}
    assert verdicts == {"a/bang-1.pdf": "valid", "a/bang-1.xml": "valid", "b/sua.pdf": "invalid", "rac.txt": "invalid"}
    receipt = body["receipt_xml"].encode()
    report = XmlVerifier(dep.trust_roots, dep.intermediates).verify(receipt)
    assert report.verdict == "valid", report.reasons
    assert report.data is not None and hashlib.sha256(docs[0].pdf).hexdigest().encode() in report.data
    forged = receipt.replace(b"<verdict>invalid</verdict>", b"<verdict>valid</verdict>", 1)
    assert XmlVerifier(dep.trust_roots, dep.intermediates).verify(forged).verdict == "invalid"

    csv_text = _client(dep).post("/api/v1/verify/bulk?format=csv", files={"file": ("lo.zip", upload)}).text
    assert csv_text.splitlines()[0].startswith("file,sha256,format,verdict")
    assert "b/sua.pdf" in csv_text and len(csv_text.splitlines()) == 5


def test_bulk_refuses_zip_bombs_and_non_zips(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, _ = issued
    bomb = _zip({"bomb.pdf": b"\0" * (60 * 1024 * 1024)})
    assert len(bomb) < 200_000
    client = _client(dep)
    refused = client.post("/api/v1/verify/bulk", files={"file": ("bomb.zip", bomb)})
    assert refused.status_code == 400 and "ZIP bomb" in refused.text
    not_zip = client.post("/api/v1/verify/bulk", files={"file": ("x.zip", b"PK no")})
    assert not_zip.status_code == 400 and "not a readable ZIP" in not_zip.text


def test_uploads_are_checked_against_the_register_too(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    """Good signatures are not enough: a revoked document is invalid, an unregistered one indeterminate."""
    import weasyprint

    from signer.pdf import PadesSigner, SignatureRequest

    dep, docs = issued
    client = _client(dep)
    revoked = client.post("/api/v1/verify", files={"file": ("r.pdf", docs[1].pdf)}).json()
    assert revoked["verdict"] == "invalid" and revoked["document"]["id"] == docs[1].doc_id
    assert "DOCUMENT_REVOKED" in {r["code"] for r in revoked["reasons"]}
    revoked_xml = client.post("/api/v1/verify", files={"file": ("r.xml", docs[1].xml)}).json()
    assert revoked_xml["verdict"] == "invalid"

    services = dep.start_dev_pki_services()
    try:
        signer = PadesSigner(
            trust_roots=dep.trust_roots, other_certs=dep.intermediates, timestamp_urls=dep.timestamp_urls
        )
        stray = signer.sign(
            weasyprint.HTML(string="<p>Bằng giả có chữ ký thật</p>").write_pdf(pdf_variant="pdf/a-3b"),
            dep.signing_keys["seal"],
            SignatureRequest(field_name="sig_seal", signer_name="seal", reason="test"),
        )
    finally:
        if services:
            services.stop()
    assert dep.pdf_verifier.verify(stray).verdict == "valid"  # the signature alone is fine
    unknown = client.post("/api/v1/verify", files={"file": ("s.pdf", stray)}).json()
    assert unknown["verdict"] == "indeterminate" and "NOT_IN_REGISTER" in {r["code"] for r in unknown["reasons"]}


def test_cached_proofs_give_the_same_answers_as_proving_every_time(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    """The QR page's proof cache (on by default) is fail-closed like the uncached proof it replaces."""
    from sealtrail.ledgerwiring import prove_record
    from verifier.proofcache import CachedProver

    dep, docs = issued
    cached = CachedProver(dep)
    for doc in docs:
        record = doc.record
        assert prove_record(dep, record) is True
        assert cached(record) is True
        assert cached(record) is True  # second time from the cache
        for change in ({"sha256_pdf": "0" * 64}, {"sha256_xml": "f" * 64}, {"id": "VB-2025-FORGED"}):
            forged = record.model_copy(update=change)
            assert prove_record(dep, forged) is False
            assert cached(forged) is False, change
        assert cached(record.model_copy(update={"leaf_index": 10_000})) is False  # not in the signed tree
        assert cached(record.model_copy(update={"leaf_index": None})) is False
    assert len(cached._proven) == len(docs)  # one proof per entry and checkpoint, not per request


def test_qr_page_with_and_without_the_proof_cache_agree(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    from sealtrail.web.app import create_app

    dep, docs = issued
    uncached = TestClient(create_app(dep.settings.model_copy(update={"public_proof_cache": False})))
    cached = _client(dep)
    for doc in docs:
        a, b = cached.get(f"/v/{doc.token}"), uncached.get(f"/v/{doc.token}")
        assert a.status_code == b.status_code == 200
        assert ("HỢP LỆ" in a.text) == ("HỢP LỆ" in b.text)
