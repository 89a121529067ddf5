"""Issue → export VC → verify (signature, status, ledger link) → revoke → the VC fails; online and offline, through
the real app, with the dev PKI; the output checked by independent tools (PyJWT, jsonschema with the specs' files)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.x509 import load_der_x509_certificate
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from registry.records import DocumentStatus
from schemas.statuslist import bit, decode
from schemas.vcschema import credential_errors
from sealtrail.web.api import create_api_key
from tests.interop.conftest import Issued
from verifier.credentials import offline_verifier, online_verifier


def _payload(token: str) -> dict:  # type: ignore[type-arg]
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _client(issued: Issued) -> TestClient:
    from sealtrail.web.app import create_app

    return TestClient(create_app(issued.dep.settings))


def _export(issued: Issued, doc_id: str, school: str) -> str:
    key = create_api_key(issued.dep, school)
    response = _client(issued).get(f"/api/v1/documents/{doc_id}/vc", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vc+jwt")
    return response.text


@pytest.fixture(scope="module")
def diploma_vc(issued: Issued) -> str:
    return _export(issued, issued.diploma.doc_id, "01")


def test_the_diploma_exports_as_an_open_badges_achievement_credential_signed_by_the_seal(
    issued: Issued, diploma_vc: str
) -> None:
    header = json.loads(base64.urlsafe_b64decode(diploma_vc.split(".")[0] + "=="))
    assert header["typ"] == "vc+jwt" and header["alg"] == "RS256"
    seal = issued.dep.signing_keys["seal"].certificate
    assert base64.b64decode(header["x5c"][0]) == seal.dump()
    # PyJWT, an independent JOSE implementation, checks the RS256 signature with the seal certificate's key.
    key = load_der_x509_certificate(seal.dump()).public_key()
    vc = pyjwt.decode(diploma_vc, key=key, algorithms=["RS256"], options={"verify_aud": False})  # type: ignore[arg-type]
    assert vc["type"] == ["VerifiableCredential", "AchievementCredential"]
    assert vc["credentialSubject"]["achievement"]["achievementType"] == "Diploma"
    assert vc["credentialSubject"]["licenseNumber"] == "HN 0123456"
    assert {"ext:name", "ext:birthDate"} <= {i["identityType"] for i in vc["credentialSubject"]["identifier"]}
    status = vc["credentialStatus"]
    record = issued.diploma.record
    assert status["type"] == "BitstringStatusListEntry" and status["statusPurpose"] == "revocation"
    assert status["statusListIndex"] == str(record.status_index)
    assert status["statusListCredential"].endswith(f"/status/{record.status_list}/revocation")
    evidence = vc["evidence"][0]
    assert evidence["documentId"] == issued.diploma.doc_id and evidence["leafIndex"] == issued.diploma.leaf_index
    assert evidence["pdfSha256"] == record.sha256_pdf and evidence["xmlSha256"] == record.sha256_xml
    assert evidence["logOrigin"] == issued.dep.settings.log_origin and "tlogProof" in evidence
    assert credential_errors(vc) == []  # VC 2.0 and OB 3.0 JSON Schemas (shipped copies), via jsonschema


def test_the_schemas_catch_what_they_should(diploma_vc: str) -> None:
    vc = _payload(diploma_vc)
    del vc["credentialSubject"]["achievement"]["criteria"]
    vc["credentialSubject"]["nickname"] = "x"
    vc["@context"] = ["https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
    errors = " | ".join(credential_errors(vc))
    assert "'criteria' is a required property" in errors
    assert "Additional properties are not allowed ('nickname'" in errors
    assert "VC 2.0: @context" in errors


def test_formats_are_checked_by_an_independent_jsonschema_validator(issued: Issued, diploma_vc: str) -> None:
    """jsonschema's own validators with its FormatChecker over the shipped files: date-time, date and uri are
    really checked (rfc3339-validator and rfc3986-validator installed), and the credential is VC 2.0 shaped."""
    from jsonschema import Draft201909Validator, Draft202012Validator, FormatChecker

    from schemas.vcschema import VC_SCHEMA, load, ob_schema_for_vc2

    checker = FormatChecker()
    assert {"date-time", "date", "uri"} <= set(checker.checkers)
    vc = _payload(diploma_vc)
    assert (
        "validFrom" in vc and "issuanceDate" not in vc and vc["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    )
    ob = Draft201909Validator(ob_schema_for_vc2(), format_checker=checker)
    vc2 = Draft202012Validator(load(VC_SCHEMA), format_checker=checker)
    assert list(ob.iter_errors(vc)) == [] and list(vc2.iter_errors(vc)) == []
    vc["validFrom"] = "23/11/2026"
    assert any("is not a 'date-time'" in e.message for e in ob.iter_errors(vc))
    transcript = _payload(_export(issued, issued.transcript.doc_id, "01001503"))
    transcript["credentialStatus"]["statusListCredential"] = "not a uri"
    transcript["credentialSubject"]["birthDate"] = "2010-02-30"
    errors = " | ".join(credential_errors(transcript))
    assert "is not a 'uri'" in errors and "is not a 'date'" in errors


def test_the_transcript_exports_with_its_results(issued: Issued) -> None:
    token = _export(issued, issued.transcript.doc_id, "01001503")
    vc = _payload(token)
    assert "SealTrailTranscriptCredential" in vc["type"] and credential_errors(vc) == []
    subject = vc["credentialSubject"]
    year = subject["schoolYears"][0]
    assert year["learning"] and year["conduct"] and year["subjects"]
    scored = next(s for s in year["subjects"] if s["assessment"] == "scored")
    assert float(scored["yearAverage"]) > 0
    assert online_verifier(issued.dep).verify(token).verdict == "valid"


def test_the_api_is_school_scoped(issued: Issued) -> None:
    client = _client(issued)
    other = create_api_key(issued.dep, "01001503")
    url = f"/api/v1/documents/{issued.diploma.doc_id}/vc"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    own = create_api_key(issued.dep, "01")
    assert (
        client.get("/api/v1/documents/VB-0000-NOPE/vc", headers={"Authorization": f"Bearer {own}"}).status_code == 404
    )


def test_round_trip_online_and_offline_then_revocation_makes_it_fail(
    issued: Issued, diploma_vc: str, tmp_path: Path
) -> None:
    dep, client = issued.dep, _client(issued)
    online = online_verifier(dep)
    report = online.verify(diploma_vc)
    assert report.verdict == "valid", report.reasons
    assert (report.status, report.ledger, report.document_id) == ("active", "proven", issued.diploma.doc_id)

    before = tmp_path / "trust-before"
    dep.export_trust(before)
    record = issued.diploma.record
    assert (before / "status" / record.status_list / "revocation.jwt").is_file()
    assert offline_verifier(before).verify(diploma_vc).verdict == "valid"

    url = f"/status/{record.status_list}/revocation"
    listing = client.get(url)
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("application/vc+jwt")
    bits = decode(_payload(listing.text)["credentialSubject"]["encodedList"])
    assert not bit(bits, record.status_index)  # type: ignore[arg-type]
    assert credential_errors(_payload(listing.text)) == []
    assert client.get("/status/01/1999-2000/revocation").status_code == 404
    profile = client.get("/issuers/01").json()
    assert profile["id"] == _payload(diploma_vc)["issuer"]["id"] and profile["name"] == record.school_name
    assert client.get("/issuers/99999").status_code == 404

    issued.set_status(issued.diploma.doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    try:
        relisted = client.get(url).text
        assert relisted != listing.text  # re-signed because a bit changed
        assert bit(decode(_payload(relisted)["credentialSubject"]["encodedList"]), record.status_index)  # type: ignore[arg-type]
        revoked = online.verify(diploma_vc)
        assert revoked.verdict == "invalid" and revoked.status == "revoked"
        assert "DOCUMENT_REVOKED" in {r.code for r in revoked.reasons}
        # An offline bundle is a snapshot: the old one still says valid, a fresh one says revoked.
        assert offline_verifier(before).verify(diploma_vc).verdict == "valid"
        after = tmp_path / "trust-after"
        dep.export_trust(after)
        assert offline_verifier(after).verify(diploma_vc).verdict == "invalid"
        # Without any status list offline, the answer is never "valid".
        for path in sorted((after / "status").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        assert offline_verifier(after).verify(diploma_vc).verdict == "indeterminate"
    finally:
        issued.set_status(issued.diploma.doc_id, DocumentStatus.ISSUED)
    assert online.verify(diploma_vc).verdict == "valid"


def test_superseded_documents_are_set_too(issued: Issued) -> None:
    token = _export(issued, issued.transcript.doc_id, "01001503")
    issued.set_status(issued.transcript.doc_id, DocumentStatus.SUPERSEDED, superseded_by=issued.diploma.doc_id)
    try:
        assert online_verifier(issued.dep).verify(token).status == "revoked"
    finally:
        issued.set_status(issued.transcript.doc_id, DocumentStatus.ISSUED)


def test_tampering_and_forgery_are_caught(issued: Issued, diploma_vc: str, tmp_path: Path) -> None:
    online = online_verifier(issued.dep)
    head, _body, sig = diploma_vc.split(".")
    vc = _payload(diploma_vc)
    vc["credentialSubject"]["licenseNumber"] = "HN 9999999"
    forged_body = base64.urlsafe_b64encode(json.dumps(vc).encode()).decode().rstrip("=")
    forged = online.verify(f"{head}.{forged_body}.{sig}")
    assert forged.verdict == "invalid" and "SIG_CRYPTO_FAILURE" in {r.code for r in forged.reasons}
    assert online.verify("not.a.jws").verdict == "invalid"

    # Signed by the seal but pointing at another document's ledger entry: the link contradicts the log.
    from signer.credentials import credential_for
    from signer.vc import sign_jwt

    lying = credential_for(issued.dep, issued.diploma.doc_id)
    lying["evidence"][0]["leafIndex"] = issued.transcript.leaf_index
    lying["evidence"][0].pop("tlogProof")
    token = sign_jwt(lying, issued.dep.signing_keys["seal"], "kid")
    assert online.verify(token).verdict == "invalid"

    # A key the trust list does not know (the log's own Ed25519 key is not an X.509 seal; use a fresh RSA key).
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from hsm_adapters.soft import SoftKeyBackend

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Fake school")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    fake = SoftKeyBackend(key, asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)), [])
    untrusted = online.verify(sign_jwt(_payload(diploma_vc), fake, "kid"))
    assert untrusted.verdict == "indeterminate" and not untrusted.trusted


def test_cli_exports_and_verifies_offline(issued: Issued, tmp_path: Path) -> None:
    from sealtrail.cli import app

    env = {
        "SEALTRAIL_DATA_DIR": str(issued.dep.settings.resolved_data_dir),
        "SEALTRAIL_DEV_PKI_URL": issued.dep.settings.dev_pki_url,
    }
    runner = CliRunner()
    out = tmp_path / "diploma.json"
    result = runner.invoke(app, ["export-vc", issued.diploma.doc_id, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["credential"]["evidence"][0]["documentId"] == issued.diploma.doc_id
    trust = tmp_path / "trust"
    assert runner.invoke(app, ["export-trust", str(trust)], env=env).exit_code == 0
    result = runner.invoke(app, ["verify", str(out), "--trust", str(trust)], env=env)
    assert result.exit_code == 0 and "HỢP LỆ" in result.output, result.output
    jwt_file = tmp_path / "diploma.jwt"
    assert runner.invoke(app, ["export-vc", issued.diploma.doc_id, "--out", str(jwt_file)], env=env).exit_code == 0
    result = runner.invoke(app, ["verify", str(jwt_file), "--json"], env=env)  # online: this installation
    assert result.exit_code == 0 and json.loads(result.output)["ledger"] == "proven", result.output
    # The decoded copy in a .json file is never trusted: editing it changes nothing, editing the JWS fails.
    saved["jwt"] = saved["jwt"][:-4] + ("AAAA" if not saved["jwt"].endswith("AAAA") else "BBBB")
    out.write_text(json.dumps(saved), encoding="utf-8")
    assert runner.invoke(app, ["verify", str(out), "--trust", str(trust)], env=env).exit_code == 1
    missing = runner.invoke(app, ["export-vc", "VB-0000-NOPE", "--out", str(tmp_path / "x.jwt")], env=env)
    assert missing.exit_code == 1 and "no document" in missing.output


def _offline_loader(url: str, options: object = None) -> dict:  # type: ignore[type-arg]
    from schemas.vcschema import context_document

    document = context_document(url)
    if document is None:
        raise AssertionError(f"the JSON-LD processor wanted to fetch {url}")
    return {"contextUrl": None, "documentUrl": url, "document": document}


def _leaves(obj: object) -> int:
    if isinstance(obj, dict):
        return sum(_leaves(v) for k, v in obj.items() if k != "@context")
    return sum(_leaves(v) for v in obj) if isinstance(obj, list) else 1


def _expanded_leaves(obj: object) -> int:
    if isinstance(obj, list):
        return sum(_expanded_leaves(v) for v in obj)
    if isinstance(obj, dict):
        if "@value" in obj:
            return 1
        own = (1 if "@id" in obj else 0) + len(obj.get("@type", []))
        return own + sum(_expanded_leaves(v) for k, v in obj.items() if not k.startswith("@"))
    return 0


def _terms(obj: object) -> set[str]:
    if isinstance(obj, list):
        return set().union(*(_terms(v) for v in obj)) if obj else set()
    if isinstance(obj, dict):
        types = obj.get("@type", [])
        own = {*obj, *(types if isinstance(types, list) else [types])}
        return own.union(*(_terms(v) for v in obj.values()))
    return set()


def test_every_term_is_defined_by_the_shipped_json_ld_contexts(issued: Issued, diploma_vc: str) -> None:
    """pyld (an independent JSON-LD processor) expands each credential with only the shipped contexts: no value is
    dropped and no term falls back to the VC 2.0 'issuer-dependent' vocabulary (i.e. every term is defined)."""
    from pyld import jsonld

    transcript = _export(issued, issued.transcript.doc_id, "01001503")
    record = issued.diploma.record
    listing = _client(issued).get(f"/status/{record.status_list}/revocation").text
    for token in (diploma_vc, transcript, listing):
        credential = _payload(token)
        expanded = jsonld.expand(credential, {"documentLoader": _offline_loader})
        assert _expanded_leaves(expanded) == _leaves(credential)
        undefined = {t for t in _terms(expanded) if "issuer-dependent" in t}
        assert not undefined, undefined
    broken = _payload(diploma_vc)
    broken["credentialSubject"]["achievement"]["shoeSize"] = "42"
    expanded = jsonld.expand(broken, {"documentLoader": _offline_loader})
    dropped = _expanded_leaves(expanded) != _leaves(broken)
    assert dropped or any("issuer-dependent" in t for t in _terms(expanded))  # an undefined term is noticed


def test_round_trip_on_postgresql(dev_pki, pg_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import schemas
    from sealtrail.ledgerwiring import publish_checkpoint
    from signer.credentials import export_vc
    from tests.interop.conftest import deployment_on

    dep = deployment_on(dev_pki, tmp_path / "pg", database_url=pg_url)
    doc = dep.make_issuer().issue(schemas.parse_document(schemas.load_sample("diploma_bachelor")))
    publish_checkpoint(dep)
    token = export_vc(dep, doc.doc_id)
    assert credential_errors(_payload(token)) == []
    assert online_verifier(dep).verify(token).verdict == "valid"
    Issued(dep, doc, doc).set_status(doc.doc_id, DocumentStatus.REVOKED)
    assert online_verifier(dep).verify(token).verdict == "invalid"


def test_signed_files_are_checked_against_the_bundles_status_lists_offline(issued: Issued, tmp_path: Path) -> None:
    from sealtrail.cli import app

    env = {"SEALTRAIL_DATA_DIR": str(tmp_path / "nothing-here")}  # offline: only the bundle is used
    pdf, xml = tmp_path / "diploma.pdf", tmp_path / "diploma.xml"
    pdf.write_bytes(issued.diploma.pdf)
    xml.write_bytes(issued.diploma.xml)
    before = tmp_path / "before"
    issued.dep.export_trust(before)
    index = json.loads((before / "status" / "index.json").read_text())
    assert (
        index[issued.diploma.record.sha256_pdf]
        == f"{issued.diploma.record.status_list}#{issued.diploma.record.status_index}"
    )
    runner = CliRunner()
    for path in (pdf, xml):
        result = runner.invoke(app, ["verify", str(path), "--trust", str(before)], env=env)
        assert result.exit_code == 0, result.output
    issued.set_status(issued.diploma.doc_id, DocumentStatus.REVOKED)
    try:
        after = tmp_path / "after"
        issued.dep.export_trust(after)
        for path in (pdf, xml):
            result = runner.invoke(app, ["verify", str(path), "--trust", str(after), "--json"], env=env)
            report = json.loads(result.output)
            assert result.exit_code == 1 and report["verdict"] == "invalid"
            assert "DOCUMENT_REVOKED" in {r["code"] for r in report["reasons"]}
    finally:
        issued.set_status(issued.diploma.doc_id, DocumentStatus.ISSUED)
    (before / "status" / "index.json").unlink()  # a bundle without status lists never says "valid"
    result = runner.invoke(app, ["verify", str(pdf), "--trust", str(before), "--json"], env=env)
    assert result.exit_code == 1 and json.loads(result.output)["verdict"] == "indeterminate"
    assert not (tmp_path / "nothing-here").exists()
