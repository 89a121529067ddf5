"""Issue #20's QR attacks against a real installation, through `sealtrail verify-qr` and the QR page: links a
browser reads differently, a genuine seal under another document's link, and an unsigned, visibly altered PDF
that carries the genuine XML; plus the printed QR still decoding (zbarimg) with the link binding in it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from typer.testing import CliRunner

from schemas.qrseal import SealClaims, key_id, parse_qr_payload, qr_payload
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from signer.qrseal import make_seal
from tests.verifier.conftest import installation
from verifier.pdf import attachments
from verifier.qrseal import OLDER_KIND, OTHER_LINK, seal_matches_document, verify_seal

FAKE_NAME = "Tran Van Gia - Xuat sac"


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    with installation(tmp_path_factory.mktemp("qr-integrity")) as installed:
        yield installed


def _verify_qr(dep: Deployment, *args: str) -> tuple[int, str]:
    from sealtrail.cli import app

    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}
    result = CliRunner().invoke(app, ["verify-qr", *args], env=env)
    return result.exit_code, result.output


def _keys(dep: Deployment) -> dict[bytes, object]:
    public = dep.qr_private_key.public_key()  # type: ignore[attr-defined]
    return {key_id(public): public}


def _split(payload: str) -> tuple[str, str, str]:
    """(scheme, the rest of the address, the fragment) of an issued QR payload."""
    address, fragment = payload.split("#", 1)
    scheme, rest = address.split("://", 1)
    return scheme, rest, fragment


def test_an_issued_qr_is_bound_to_its_link_and_verifies(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    for doc in docs:
        claims = verify_seal(parse_qr_payload(doc.qr_payload).seal or "", _keys(dep))  # type: ignore[arg-type]
        assert claims.link_digest is not None and claims.doc_id == doc.doc_id
        code, output = _verify_qr(dep, doc.qr_payload)
        assert code == 0, output
        assert doc.doc_id in output and "loại cũ" not in output


def test_verify_qr_refuses_a_backslash_link_and_names_the_browsers_host(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, docs = issued
    scheme, rest, fragment = _split(docs[0].qr_payload)
    code, output = _verify_qr(dep, f"{scheme}://evil.example\\@{rest}#{fragment}")
    assert code == 1, output
    assert "KHÔNG HỢP LỆ" in output and "backslash" in output
    assert "a browser would open 'evil.example'" in output
    assert "CẢNH BÁO: liên kết trỏ tới 'evil.example'" in output and "look-alike" in output


@pytest.mark.parametrize("userinfo", ["user@", "user:secret@", "@"])
def test_verify_qr_refuses_a_user_name_in_the_link(
    issued: tuple[Deployment, list[IssuedDocument]], userinfo: str
) -> None:
    dep, docs = issued
    scheme, rest, fragment = _split(docs[0].qr_payload)
    code, output = _verify_qr(dep, f"{scheme}://{userinfo}{rest}#{fragment}")
    assert code == 1 and "KHÔNG HỢP LỆ" in output and "user name" in output, output


def test_a_genuine_seal_under_another_documents_link_fails(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    own_address, own_seal = docs[0].qr_payload.split("#", 1)
    other_address = docs[1].qr_payload.split("#", 1)[0]
    code, output = _verify_qr(dep, f"{other_address}#{own_seal}")
    assert code == 1 and "KHÔNG HỢP LỆ" in output and OTHER_LINK in output, output
    assert _verify_qr(dep, f"{own_address}#{own_seal}")[0] == 0


def test_a_seal_of_the_older_kind_still_passes_with_a_note(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    """Documents issued before seals were bound to links carry no claim 8: still valid, with a note."""
    dep, docs = issued
    keys = _keys(dep)
    claims = verify_seal(parse_qr_payload(docs[0].qr_payload).seal or "", keys)  # type: ignore[arg-type]
    older = make_seal(SealClaims(**{**claims.__dict__, "link_digest": None}), dep.qr_private_key)  # type: ignore[arg-type]
    address = docs[0].qr_payload.split("#", 1)[0]
    base, token = address.rsplit("/v/", 1)
    code, output = _verify_qr(dep, qr_payload(base, token, older))
    assert code == 0, output
    assert OLDER_KIND.split(" / ")[0] in output and "older kind" in output


def _unsigned_altered_copy(pdf: bytes) -> bytes:
    """The issued PDF rewritten whole without its signature fields, page 1 painted over with another name; the
    attached XML (the genuine one) is kept as it was."""
    writer = copy_into_new_writer(PdfFileReader(BytesIO(pdf), strict=False))
    del writer.root["/AcroForm"]
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    annots = page.get("/Annots")
    if annots is not None:
        page["/Annots"] = generic.ArrayObject(
            a for a in annots.get_object() if a.get_object().get("/Subtype") != "/Widget"
        )
    font = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Font"),
            generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
            generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
        }
    )
    page["/Resources"]["/Font"].get_object()[generic.NameObject("/FForged")] = font
    # The page's own streams leave their coordinate transform in place: save the state before them, restore after,
    # then paint a white band over the middle of the page with another name on it.
    old = page["/Contents"]
    old_streams = list(old) if isinstance(old, generic.ArrayObject) else [page.raw_get("/Contents")]
    save = writer.add_object(generic.StreamObject(stream_data=b"q\n"))
    paint = f"Q q 1 1 1 rg 0 370 900 100 re f 0 0 0 rg BT /FForged 30 Tf 90 410 Td ({FAKE_NAME}) Tj ET Q".encode()
    page["/Contents"] = generic.ArrayObject(
        [save, *old_streams, writer.add_object(generic.StreamObject(stream_data=paint))]
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_verify_qr_document_refuses_an_unsigned_altered_pdf_carrying_the_genuine_xml(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    dep, docs = issued
    altered = _unsigned_altered_copy(docs[0].pdf)
    path = tmp_path / "altered.pdf"
    path.write_bytes(altered)
    # What a reader sees: the other name, in two independent engines (poppler and MuPDF).
    poppler = subprocess.run(["pdftotext", "-l", "1", str(path), "-"], capture_output=True, text=True, check=True)
    mupdf = subprocess.run(
        ["mutool", "draw", "-q", "-F", "txt", "-o", "-", str(path), "1"], capture_output=True, text=True, check=True
    )
    assert FAKE_NAME in poppler.stdout and FAKE_NAME in mupdf.stdout
    # The attack is real: the file carries the very XML the genuine seal vouches for, so a hash check alone passes.
    claims = verify_seal(parse_qr_payload(docs[0].qr_payload).seal or "", _keys(dep))  # type: ignore[arg-type]
    carried = attachments(PdfFileReader(BytesIO(altered), strict=False))
    assert seal_matches_document(claims, [a["sha256"] for a in carried])
    signed = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
    assert "does not contain any signatures" in signed.stdout + signed.stderr

    code, output = _verify_qr(dep, docs[0].qr_payload, "--document", str(path))
    assert code == 1, output
    assert "Văn bản altered.pdf" in output and "is valid and is the document" not in output

    genuine = tmp_path / "genuine.pdf"
    genuine.write_bytes(docs[0].pdf)
    code, output = _verify_qr(dep, docs[0].qr_payload, "--document", str(genuine))
    assert code == 0 and "genuine.pdf is valid and is the document this QR belongs to" in output, output


def test_verify_qr_document_with_a_trust_bundle_checks_signatures_with_the_bundles_roots(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    dep, docs = issued
    bundle = tmp_path / "trust"
    dep.export_trust(bundle)
    (tmp_path / "genuine.pdf").write_bytes(docs[0].pdf)
    (tmp_path / "altered.pdf").write_bytes(_unsigned_altered_copy(docs[0].pdf))
    good = _verify_qr(dep, docs[0].qr_payload, "--trust", str(bundle), "--document", str(tmp_path / "genuine.pdf"))
    assert good[0] == 0, good[1]
    bad = _verify_qr(dep, docs[0].qr_payload, "--trust", str(bundle), "--document", str(tmp_path / "altered.pdf"))
    assert bad[0] == 1 and "Văn bản altered.pdf" in bad[1], bad[1]


def test_the_printed_qr_with_its_binding_decodes_at_150_dpi(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    dep, docs = issued
    for i, doc in enumerate(docs):
        pdf = tmp_path / f"doc{i}.pdf"
        pdf.write_bytes(doc.pdf)
        subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / f"p{i}")])
        (png,) = tmp_path.glob(f"p{i}*.png")
        decoded = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True)
        assert decoded.stdout.strip() == doc.qr_payload, (doc.doc_id, len(doc.qr_payload))
        code, output = _verify_qr(dep, str(png))
        assert code == 0 and doc.doc_id in output, output


def test_the_qr_page_answers_only_token_shaped_paths(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    from sealtrail.web.app import create_app

    dep, docs = issued
    client = TestClient(create_app(dep.settings))
    token = docs[0].token
    assert client.get(f"/v/{token}").status_code == 200
    for path in (f"/v/{token}.", f"/v/{token}%20", f"/v/{token}'", f"/v/{token[:-1]}%C3%A1"):
        page = client.get(path)
        assert page.status_code == 404 and docs[0].doc_id not in page.text, path


def test_verify_qr_document_takes_the_signed_xml_too(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    """The signed XML's covered document is what the seal's hash vouches for; another document's QR fails."""
    dep, docs = issued
    path = tmp_path / "doc.xml"
    path.write_bytes(docs[0].xml)
    code, output = _verify_qr(dep, docs[0].qr_payload, "--document", str(path))
    assert code == 0 and "doc.xml is valid and is the document this QR belongs to" in output, output
    code, output = _verify_qr(dep, docs[1].qr_payload, "--document", str(path))
    assert code == 1 and "QR_OTHER_DOCUMENT" in output, output
    altered = docs[0].xml.replace("<given_name>Hằng<".encode(), "<given_name>Hồng<".encode(), 1)
    assert altered != docs[0].xml
    path.write_bytes(altered)
    code, output = _verify_qr(dep, docs[0].qr_payload, "--document", str(path))
    assert code == 1 and "Văn bản doc.xml" in output and "is valid and is the document" not in output, output
