"""Issue #20, the PDF-structure part: attack files crafted from freshly issued documents with raw incremental updates.

Each attack is refused by the engine (``PdfVerifier``), the offline CLI (``sealtrail verify FILE``), the API
(``/api/v1/verify``) and the upload page (``/kiem-tra``); where it changes what a viewer shows, poppler and MuPDF
renders prove that it does (so the refusal is about something real)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
import weasyprint
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from hsm_adapters.soft import SoftKeyBackend
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from signer.pdf import PadesSigner, SignatureRequest
from tests.verifier.conftest import installation
from tests.verifier.pdfattacks import (
    FORGED,
    Doc,
    append_update,
    forged_page_objects,
    mupdf_text,
    poppler_attachment,
    poppler_info,
    poppler_text,
    stream,
)
from verifier.pdf import structure_problem


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    with installation(
        tmp_path_factory.mktemp("attacks"), public_rate_per_minute=600, verify_rate_per_minute=6000
    ) as installed:
        yield installed


@dataclass
class Attack:
    pdf: bytes
    code: str  # the reason code the verifier must give
    shown: Callable[[], bool] | None  # True when a viewer shows the forgery (None: nothing a viewer shows changed)


def _text_shows_forgery(pdf: bytes) -> Callable[[], bool]:
    """poppler or MuPDF (or both) show the forged text instead of the issued one."""

    def shown() -> bool:
        engines = {"poppler": poppler_text(pdf), "mupdf": mupdf_text(pdf)}
        return any(FORGED in text for text in engines.values())

    return shown


def _with_appended(text: bytes, key: bytes, ref: int) -> bytes:
    m = re.search(rb"%s\s*\[([^\]]*)\]" % key, text)
    assert m is not None, text[:300]
    return text[: m.end() - 1] + b" %d 0 R]" % ref + text[m.end() :]


def root_twice_in_trailer(doc: Doc) -> Attack:
    objects, _page, pages = forged_page_objects(doc, doc.size)
    catalog = doc.size + 4
    objects[catalog] = doc.raw(doc.root).replace(b"/Pages 1 0 R", b"/Pages %d 0 R" % pages)
    trailer = b"/Root %d 0 R /Root %d 0 R /Info %d 0 R" % (doc.root, catalog, doc.info)
    pdf = append_update(doc.pdf, objects, trailer=trailer)
    return Attack(pdf, "FORMAT_FAILURE", _text_shows_forgery(pdf))


def pages_twice_in_catalog(doc: Doc) -> Attack:
    objects, _page, pages = forged_page_objects(doc, doc.size)
    objects[doc.root] = doc.raw(doc.root).replace(b"/Pages 1 0 R", b"/Pages 1 0 R /Pages %d 0 R" % pages)
    pdf = append_update(doc.pdf, objects)
    return Attack(pdf, "FORMAT_FAILURE", _text_shows_forgery(pdf))


def xref_lists_an_object_twice(doc: Doc) -> Attack:
    """The page redefined in the update; the xref lists it twice, the new one first and the signed one second."""
    objects, page, pages = forged_page_objects(doc, doc.size)
    forged_page = objects.pop(page).replace(b"/Parent %d 0 R" % pages, b"/Parent 1 0 R")
    del objects[pages]
    signed_at = [m.start() for m in re.finditer(rb"(?m)^%d 0 obj" % doc.page, doc.pdf)][-1]
    rows: list[tuple[int, int | None]] = [(n, None) for n in objects] + [(doc.page, None), (doc.page, signed_at)]
    pdf = append_update(doc.pdf, {**objects, doc.page: forged_page}, xref=rows)
    return Attack(pdf, "FORMAT_FAILURE", _text_shows_forgery(pdf))


def new_field_with_malformed_rect(doc: Doc) -> Attack:
    """An empty signature field whose /Rect is given upside down (x1 > x2, y1 > y2: zero or negative size to a
    naive reader) and whose appearance paints the page white and writes the forged text."""
    appearance, font, widget = range(doc.size, doc.size + 3)
    form = doc.reader.root.raw_get("/AcroForm").idnum
    paint = b"q 1 1 1 rg 0 0 842 595 re f Q BT 0 0 0 rg /F1 28 Tf 60 400 Td (%s) Tj ET" % FORGED.encode()
    objects = {
        appearance: stream(
            paint, b"/Type /XObject /Subtype /Form /BBox [0 0 842 595] /Resources << /Font << /F1 %d 0 R >> >>" % font
        ),
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        widget: b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (sig_extra) /Rect [842 595 0 0] /F 4 /P %d 0 R "
        b"/AP << /N %d 0 R >> >>" % (doc.page, appearance),
        doc.page: _with_appended(doc.raw(doc.page), b"/Annots", widget),
        form: _with_appended(doc.raw(form), b"/Fields", widget),
    }
    pdf = append_update(doc.pdf, objects)
    return Attack(pdf, "MODIFIED_AFTER_SIGNING", _text_shows_forgery(pdf))


def info_title_changed(doc: Doc) -> Attack:
    info = doc.reader.get_object(generic.Reference(doc.info, 0))
    forged = generic.DictionaryObject(dict(info.items()))
    forged[generic.NameObject("/Title")] = generic.TextStringObject(FORGED)
    out = BytesIO()
    forged.write_to_stream(out)
    pdf = append_update(doc.pdf, {doc.info: out.getvalue()})
    return Attack(
        pdf, "MODIFIED_AFTER_SIGNING", lambda: re.search(f"(?m)^Title: +{FORGED}$", poppler_info(pdf)) is not None
    )


def xmp_changed(doc: Doc) -> Attack:
    metadata = doc.reader.root.raw_get("/Metadata").idnum
    xmp = doc.stream_data(metadata)
    title = re.search(rb'<rdf:li xml:lang="x-default">([^<]*)</rdf:li>', xmp)
    assert title is not None
    forged = xmp.replace(title.group(1), FORGED.encode())
    pdf = append_update(doc.pdf, {metadata: stream(forged, b"/Type /Metadata /Subtype /XML")})
    return Attack(pdf, "MODIFIED_AFTER_SIGNING", lambda: FORGED in poppler_info(pdf))


def attached_xml_swapped(doc: Doc) -> Attack:
    """The embedded XML redefined in a later revision with another holder name."""
    spec = doc.reader.root["/AF"][0]
    ref = spec["/EF"].raw_get("/F")
    embedded = ref.get_object()
    original = embedded.data
    name = re.search(rb"<(?:\w+:)?ho_ten>([^<]+)<", original) or re.search(rb">([^<>]{6,40})<", original)
    assert name is not None
    forged = original.replace(name.group(1), FORGED.encode())
    extra = b"/Type /EmbeddedFile /Subtype /text#2Fxml"
    pdf = append_update(doc.pdf, {ref.idnum: stream(forged, extra)})
    return Attack(pdf, "MODIFIED_AFTER_SIGNING", lambda: poppler_attachment(pdf) == forged != original)


def embedded_files_twice(doc: Doc) -> Attack:
    """The catalog's /Names repeats /EmbeddedFiles: the second name tree holds a file spec with a forged XML."""
    spec = doc.reader.root["/AF"][0]
    original = spec["/EF"]["/F"].data
    name = re.search(rb"<(?:\w+:)?ho_ten>([^<]+)<", original) or re.search(rb">([^<>]{6,40})<", original)
    assert name is not None
    forged = original.replace(name.group(1), FORGED.encode())
    data, filespec, tree = range(doc.size, doc.size + 3)
    catalog = doc.raw(doc.root)
    m = re.search(rb"/EmbeddedFiles\s+(\d+) 0 R", catalog)
    assert m is not None
    objects = {
        data: stream(forged, b"/Type /EmbeddedFile /Subtype /text#2Fxml"),
        filespec: b"<< /Type /Filespec /F (%s) /UF (%s) /EF << /F %d 0 R >> /AFRelationship /Data >>"
        % (str(spec["/F"]).encode(), str(spec["/F"]).encode(), data),
        tree: b"<< /Names [(%s) %d 0 R] >>" % (str(spec["/F"]).encode(), filespec),
        doc.root: catalog.replace(m.group(), m.group() + b" /EmbeddedFiles %d 0 R" % tree, 1),
    }
    pdf = append_update(doc.pdf, objects)
    return Attack(pdf, "FORMAT_FAILURE", lambda: poppler_attachment(pdf) == forged != original)


ATTACKS = {
    f.__name__: f
    for f in (
        root_twice_in_trailer,
        pages_twice_in_catalog,
        xref_lists_an_object_twice,
        new_field_with_malformed_rect,
        info_title_changed,
        xmp_changed,
        attached_xml_swapped,
        embedded_files_twice,
    )
}


def _cli(dep: Deployment, pdf: bytes, tmp_path: Path) -> tuple[int, str]:
    from typer.testing import CliRunner

    from sealtrail.cli import app

    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}
    done = CliRunner().invoke(app, ["verify", str(path)], env=env)
    return done.exit_code, done.output


_CLIENTS: dict[int, TestClient] = {}


def _client(dep: Deployment) -> TestClient:
    """One app per installation (building it costs more than the checks)."""
    from sealtrail.web.app import create_app

    if id(dep) not in _CLIENTS:
        _CLIENTS[id(dep)] = TestClient(create_app(dep.settings))
    return _CLIENTS[id(dep)]


def assert_refused_everywhere(dep: Deployment, pdf: bytes, code: str, tmp_path: Path) -> None:
    report = dep.pdf_verifier.verify(pdf)
    assert report.verdict == "invalid" and report.reasons[0].code == code, report.reasons
    exit_code, output = _cli(dep, pdf, tmp_path)
    assert exit_code != 0 and not output.startswith("HỢP LỆ") and "KHÔNG HỢP LỆ" in output, output
    client = _client(dep)
    api = client.post("/api/v1/verify", files={"file": ("a.pdf", pdf)})
    assert api.status_code == 200 and api.json()["verdict"] == "invalid", api.text
    page = client.post("/kiem-tra", files={"file": ("a.pdf", pdf)})
    assert (
        page.status_code == 200 and 'class="card verdict invalid"' in page.text and "<h1>KHÔNG HỢP LỆ</h1>" in page.text
    )


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_everywhere(
    issued: tuple[Deployment, list[IssuedDocument]], name: str, tmp_path: Path
) -> None:
    dep, docs = issued
    for doc in (docs[0], docs[2]):  # a diploma (seal last) and a transcript (three signatures)
        attack = ATTACKS[name](Doc(doc.pdf))
        if attack.shown is not None:
            assert attack.shown(), f"{name}: no engine shows the forgery, so the attack file proves nothing"
        assert_refused_everywhere(dep, attack.pdf, attack.code, tmp_path)


def test_the_forged_page_is_what_both_engines_show(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    """The duplicate-key and duplicate-xref files are read the same way by poppler and MuPDF: the forged page."""
    _dep, docs = issued
    for build in (root_twice_in_trailer, pages_twice_in_catalog, xref_lists_an_object_twice):
        pdf = build(Doc(docs[0].pdf)).pdf
        assert FORGED in poppler_text(pdf) and FORGED in mupdf_text(pdf), build.__name__
        assert FORGED not in poppler_text(docs[0].pdf)


def test_object_referenced_when_signed_but_defined_later_is_refused(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    """An insider leaves a reference to an undefined annotation in the page before the seal signs it; after
    issuance the annotation is defined in an update and shows a forged text over the page."""
    dep, _docs = issued
    pdf = weasyprint.HTML(string="<p>BẰNG TỐT NGHIỆP (thử)</p>").write_pdf(pdf_variant="pdf/a-3b")
    doc = Doc(pdf)
    dangling = doc.size + 10
    prepared = append_update(pdf, {doc.page: _add_annots(doc.raw(doc.page), dangling)})
    prepared = prepared.replace(b"/Size %d " % doc.size, b"/Size %d " % (dangling + 1))
    pki = dep.dev_pki
    signer = PadesSigner(
        trust_roots=dep.trust_roots, other_certs=dep.intermediates, timestamp_urls=[pki.tsa_url], long_term=True
    )
    backend = SoftKeyBackend.from_pkcs12(pki.p12_path("seal"))
    signed = signer.sign(prepared, backend, SignatureRequest("sig_seal", "seal", "test", lock_document=True))
    assert structure_problem(signed) is None and dep.pdf_verifier.verify(signed).verdict == "valid"
    font, appearance = dangling + 1, dangling + 2
    paint = b"q 1 1 1 rg 0 0 595 842 re f Q BT 0 0 0 rg /F1 20 Tf 40 700 Td (%s) Tj ET" % FORGED.encode()
    attack = append_update(
        signed,
        {
            dangling: b"<< /Type /Annot /Subtype /Stamp /Rect [0 0 595 842] /F 4 /AP << /N %d 0 R >> >>" % appearance,
            font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            appearance: stream(
                paint,
                b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >>" % font,
            ),
        },
    )
    assert FORGED in poppler_text(attack) or FORGED in mupdf_text(attack)
    problem = structure_problem(attack)
    assert problem is not None and f"object {dangling} is referenced by an earlier revision" in problem.en
    assert_refused_everywhere(dep, attack, "FORMAT_FAILURE", tmp_path)


def _add_annots(page: bytes, ref: int) -> bytes:
    if b"/Annots" in page:
        return _with_appended(page, b"/Annots", ref)
    return page[: page.rindex(b">>")] + b" /Annots [%d 0 R] >>" % ref


def test_issued_and_archived_documents_still_pass(
    issued: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    """Genuine documents (diplomas, a transcript, DSS revisions, B-LTA document timestamps twice) pass the strict
    reading and the post-signature policy, and the CLI still says valid; the added time is small."""
    from signer.archive import extend_to_lta

    dep, docs = issued
    pki = dep.dev_pki
    lta = extend_to_lta(
        docs[0].pdf, timestamp_urls=[pki.tsa_url], trust_roots=dep.trust_roots, other_certs=dep.intermediates
    )
    lta2 = extend_to_lta(lta, timestamp_urls=[pki.tsa_url], trust_roots=dep.trust_roots, other_certs=dep.intermediates)
    for pdf in (*(d.pdf for d in docs), lta, lta2):
        assert structure_problem(pdf) is None
        assert dep.pdf_verifier.verify(pdf).verdict == "valid"
    exit_code, output = _cli(dep, lta2, tmp_path)
    assert exit_code == 0 and output.startswith("HỢP LỆ"), output


def test_an_update_that_changes_nothing_is_allowed(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    """An update written by pyHanko that rewrites the catalog unchanged (and, as every pyHanko save does, the XMP
    dates and producer) is allowed after the seal; the same update with a changed /Lang is not."""
    _dep, docs = issued
    for lang, allowed in ((None, True), ("en", False)):
        writer = IncrementalPdfFileWriter(BytesIO(docs[0].pdf))
        if lang is not None:
            writer.root[generic.NameObject("/Lang")] = generic.TextStringObject(lang)
        writer.update_root()
        out = BytesIO()
        writer.write(out)
        problem = structure_problem(out.getvalue())
        assert (problem is None) is allowed, problem
        if not allowed:
            assert problem is not None and "the catalog's /Lang entry changed" in problem.en


# Fuzzing: random incremental updates appended to an issued document. Whatever they do, a document whose pages
# (as poppler extracts them) or attachment changed must never be valid.

OPERATIONS = ("new_object", "same_page_again", "page_text", "annotation", "metadata", "info", "attachment", "catalog")


def _random_update(doc: Doc, ops: list[str], words: list[str]) -> bytes:
    objects: dict[int, bytes] = {}
    nums = iter(range(doc.size, doc.size + 100))
    page = doc.raw(doc.page)
    text = " ".join(words).encode()
    for op in ops:
        if op == "new_object":
            objects[next(nums)] = b"<< /Note (%s) >>" % text
        elif op == "same_page_again":
            objects[doc.page] = page
        elif op == "page_text":
            content, font = next(nums), next(nums)
            objects[content] = stream(b"BT /FZ 14 Tf 40 40 Td (%s) Tj ET" % text)
            objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
            m = re.search(rb"/Contents\s*(\d+ 0 R|\[[^\]]*\])", page)
            assert m is not None, page
            listed = m.group(1).strip(b"[]")
            page = page.replace(m.group(), b"/Contents [%s %d 0 R]" % (listed, content), 1)
            page = re.sub(rb"/Resources\s+(\d+) 0 R", b"/Resources << /Font << /FZ %d 0 R >> >>" % font, page, count=1)
            objects[doc.page] = page
        elif op == "annotation":
            annot, appearance, font = next(nums), next(nums), next(nums)
            objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
            objects[appearance] = stream(
                b"BT /F1 14 Tf 0 10 Td (%s) Tj ET" % text,
                b"/Type /XObject /Subtype /Form /BBox [0 0 500 40] /Resources << /Font << /F1 %d 0 R >> >>" % font,
            )
            objects[annot] = b"<< /Type /Annot /Subtype /Stamp /Rect [40 60 540 100] /F 4 /AP << /N %d 0 R >> >>" % (
                appearance
            )
            page = _add_annots(page, annot)
            objects[doc.page] = page
        elif op == "metadata":
            metadata = doc.reader.root.raw_get("/Metadata").idnum
            xmp = doc.stream_data(metadata).replace(b"</dc:title>", b"</dc:title><dc:subject>%s</dc:subject>" % text)
            objects[metadata] = stream(xmp, b"/Type /Metadata /Subtype /XML")
        elif op == "info" and doc.info is not None:
            objects[doc.info] = b"<< /Title (%s) >>" % text
        elif op == "attachment":
            ref = doc.reader.root["/AF"][0]["/EF"].raw_get("/F")
            data = ref.get_object().data.replace(b"</", b"<!-- %s --></" % text, 1)
            objects[ref.idnum] = stream(data, b"/Type /EmbeddedFile /Subtype /text#2Fxml")
        elif op == "catalog":
            objects[doc.root] = doc.raw(doc.root)[:-2] + b" /PageMode /UseOutlines >>"
    return append_update(doc.pdf, objects)


@pytest.fixture(scope="module")
def baseline(issued: tuple[Deployment, list[IssuedDocument]]) -> tuple[Doc, str, bytes]:
    doc = Doc(issued[1][0].pdf)
    return doc, poppler_text(doc.pdf), poppler_attachment(doc.pdf)


def test_random_updates_that_change_what_is_seen_are_never_valid(
    issued: tuple[Deployment, list[IssuedDocument]], baseline: tuple[Doc, str, bytes]
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    dep, _docs = issued
    doc, text, attachment = baseline
    seen: dict[str, int] = {"valid": 0, "refused": 0}

    @settings(
        max_examples=20,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        ops=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=4),
        words=st.lists(st.sampled_from(["DIEM", "10", "GIOI", "NGUYEN", "VAN", "GIA", "TOAN"]), min_size=1, max_size=5),
    )
    def check(ops: list[str], words: list[str]) -> None:
        pdf = _random_update(doc, ops, words)
        changed = poppler_text(pdf) != text or poppler_attachment(pdf) != attachment
        verdict = dep.pdf_verifier.verify(pdf).verdict
        if changed:
            assert verdict != "valid", ops
        if set(ops) <= {"same_page_again"}:  # rewriting a page unchanged is what a careful tool may do: allowed
            assert verdict == "valid", ops
        seen["valid" if verdict == "valid" else "refused"] += 1

    check()
    assert seen["refused"] > 0


def test_a_change_between_signatures_is_refused(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    """Between signatures only the next signer's field and the LT data may be added: a title changed after the
    teacher signed and before the principal and the seal did is refused, although later signatures cover it."""
    dep, _docs = issued
    pki = dep.dev_pki
    signer = PadesSigner(trust_roots=dep.trust_roots, other_certs=dep.intermediates, timestamp_urls=[pki.tsa_url])
    html = "<title>Học bạ</title><p>Học bạ (thử)</p>"
    unsigned = weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")

    def sign(pdf: bytes, role: str) -> bytes:
        backend = SoftKeyBackend.from_pkcs12(pki.p12_path(role))
        return signer.sign(pdf, backend, SignatureRequest(f"sig_{role}", role, "test", lock_document=role == "seal"))

    by_teacher = sign(unsigned, "homeroom_teacher")
    honest = sign(sign(by_teacher, "principal"), "seal")
    assert structure_problem(honest) is None
    doc = Doc(by_teacher)
    assert doc.info is not None
    retitled = append_update(by_teacher, {doc.info: b"<< /Title (%s) >>" % FORGED.encode()})
    tampered = sign(sign(retitled, "principal"), "seal")
    problem = structure_problem(tampered)
    assert problem is not None and "between signatures" in problem.en and "(/Info) changed" in problem.en
    assert dep.pdf_verifier.verify(tampered).verdict == "invalid"
