"""Hostile input for the verifier: mutated, truncated, huge and deeply nested PDFs, XMLs and ZIPs built from real
signed documents. Each case runs in a worker process under RLIMIT_AS and a wall-clock bound; the answer must be
a verdict that is not "valid" (or a bulk refusal), never an exception (a 500) or a hang.

``SEALTRAIL_FUZZ_EXAMPLES=2000 uv run pytest tests/hardening/test_fuzz.py`` runs a deeper search.
"""

from __future__ import annotations

import os
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.conftest import Recorder, Signed, Worker, assert_bounded
from tests.hardening.hostile import (
    attachment_bomb,
    deep_pdf,
    flate_bomb,
    make_zip,
    mutated,
    overlapping_zip_bomb,
)

EXAMPLES = int(os.environ.get("SEALTRAIL_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 60,
    deadline=None,
    derandomize=not EXAMPLES,  # the short run is the same every time; a deep run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def _not_valid(result: dict[str, object]) -> None:
    assert_bounded(result)
    assert result["verdict"] in ("invalid", "indeterminate"), result


def test_the_originals_are_valid(worker: Worker, signed: Signed) -> None:
    """The baseline the mutations start from: the untouched files are valid (so a verdict on a mutation counts)."""
    assert_bounded(r := worker.check("pdf", signed.pdf))
    assert r["verdict"] == "valid", r
    assert_bounded(r := worker.check("xml", signed.xml))
    assert r["verdict"] == "valid", r


@FUZZ
@given(data=st.data())
def test_mutated_pdfs_are_never_valid_and_never_crash(worker: Worker, signed: Signed, data: st.DataObject) -> None:
    case = data.draw(mutated(signed.pdf))
    result = worker.check("pdf", case)
    assert_bounded(result)
    # A change inside an unsigned part (the signature container's zero padding, or the validation data added after
    # the last signature) can leave the document valid; anything else must not.
    if case != signed.pdf and result["verdict"] == "valid":
        assert _only_padding_changed(signed.pdf, case) or _only_unsigned_tail_changed(signed.pdf, case), (
            "a changed PDF was found valid"
        )


def _only_unsigned_tail_changed(a: bytes, b: bytes) -> bool:
    """True when b equals a up to the end of the last signature's byte range: only the B-LT update after it (the
    DSS with certificates and revocation data, unsigned by design and itself checked when used) differs."""
    ranges = [tuple(map(int, m.groups())) for m in re.finditer(rb"/ByteRange\s*\[\s*(\d+) (\d+) (\d+) (\d+)", a)]
    last_signed = max(r[2] + r[3] for r in ranges)
    return b[:last_signed] == a[:last_signed]


def _only_padding_changed(a: bytes, b: bytes) -> bool:
    """True when b differs from a only inside /Contents <…> hex strings' zero padding (not covered by a signature
    by design, and ignored by every validator)."""
    if len(a) != len(b):
        return False
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    for i in diffs:
        start = a.rfind(b"/Contents <", 0, i)
        end = a.find(b">", start)
        if start < 0 or not (start < i < end) or a[i] != ord("0"):
            return False
    return True


@FUZZ
@given(data=st.data())
def test_mutated_xmls_are_never_valid_and_never_crash(worker: Worker, signed: Signed, data: st.DataObject) -> None:
    case = data.draw(mutated(signed.xml))
    result = worker.check("xml", case)
    assert_bounded(result)
    if case != signed.xml and result["verdict"] == "valid":
        from lxml import etree

        from schemas.xml import secure_parser

        # Only a change the canonical form ignores (whitespace between attributes, quote style), or one inside the
        # unsigned properties (XAdES leaves them unsigned by design; a damaged spare certificate there is not used)
        # may leave the document valid.
        def signed_part(xml: bytes) -> bytes:
            root = etree.fromstring(xml, secure_parser())
            for el in root.iter("{http://uri.etsi.org/01903/v1.3.2#}UnsignedSignatureProperties"):
                el.getparent().remove(el)
            return bytes(etree.tostring(root, method="c14n"))

        a, b = signed_part(signed.xml), signed_part(case)
        assert a == b, "a changed XML was found valid"


@settings(FUZZ, max_examples=EXAMPLES or 25)
@given(data=st.data())
def test_mutated_zips_give_verdicts_or_a_clear_refusal(worker: Worker, signed: Signed, data: st.DataObject) -> None:
    original = make_zip([("hoc-ba.pdf", signed.pdf[:20000]), ("../../etc/hoc-ba.xml", signed.xml)])
    case = data.draw(mutated(original))
    result = worker.check("zip", case)
    assert_bounded(result)
    assert result["refused"] or all(v in ("invalid", "indeterminate", "valid") for v in result["verdict"])  # type: ignore[union-attr]


# --- hand-made hostile cases -------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<VanBanKySo xmlns="urn:sealtrail:signed:1">&lol9;</VanBanKySo>"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + b"A" * 50_000 + b'">]><x>' + b"&a;" * 50_000 + b"</x>"
)


def _external(url: str) -> list[tuple[str, bytes]]:
    """XML that would make a careless parser fetch ``url`` (each way a parser can be talked into it)."""
    u = url.encode()
    return [
        ("xxe-system", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "' + u + b'/xxe">]><r>&x;</r>'),
        ("xxe-file", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'),
        ("param-entity", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "' + u + b'/param">%p;]><r/>'),
        ("external-dtd", b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "' + u + b'/dtd"><r/>'),
        (
            "xinclude",
            b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="' + u + b'/xinclude"/></r>',
        ),
        ("stylesheet", b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="' + u + b'/xsl"?><r/>'),
        (
            "schema-location",
            b'<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x '
            + u
            + b'/xsd" xsi:noNamespaceSchemaLocation="'
            + u
            + b'/xsd2"/>',
        ),
    ]


def _signed_with_external_refs(xml: bytes, url: str) -> list[tuple[str, bytes]]:
    """The real signed XML with its references and key info pointed at ``url``."""
    u = url.encode()
    return [
        ("reference-uri", xml.replace(b'URI="#DuLieu"', b'URI="' + u + b'/reference"', 1)),
        (
            "retrieval-method",
            re.sub(rb"(<ds:KeyInfo[^>]*>)", rb'\1<ds:RetrievalMethod URI="' + u + rb'/retrieval"/>', xml, count=1),
        ),
        ("x509-url", re.sub(rb"<ds:X509Certificate>[^<]*<", b"<ds:X509Certificate>" + u + b"/cert<", xml, count=1)),
    ]


def test_xml_entity_attacks_are_refused_without_expansion(worker: Worker) -> None:
    for case in (BILLION_LAUGHS, QUADRATIC_BLOWUP):
        result = worker.check("xml", case)
        _not_valid(result)
        assert result["peak"] < 20 * 1024**2, result  # nothing was expanded
        assert result["seconds"] < 5, result


def test_xml_never_fetches_anything(worker: Worker, signed: Signed, recorder: Recorder) -> None:
    cases = _external(recorder.url) + _signed_with_external_refs(signed.xml, recorder.url)
    for name, case in cases:
        assert case not in (signed.xml, b""), name
        for kind in ("xml", "auto"):
            result = worker.check(kind, case)
            _not_valid(result)
            assert recorder.hits == [], (name, recorder.hits)


def test_recorder_counts_hits(recorder: Recorder) -> None:
    """The proof above means something only if the recorder sees a request when one is made."""
    import httpx

    httpx.get(recorder.url + "/probe", timeout=5)
    assert recorder.hits == ["GET /probe"]


def test_deeply_nested_and_huge_xml(worker: Worker) -> None:
    ns = b'<VanBanKySo xmlns="urn:sealtrail:signed:1">'
    cases = [
        b"<a>" * 200_000 + b"</a>" * 200_000,
        ns + b"<x " + b" ".join(b'a%d="1"' % i for i in range(50_000)) + b"/></VanBanKySo>",
        ns + b"<x>" + b"A" * (9 * 1024 * 1024) + b"</x></VanBanKySo>",
        b"<" + b"a" * (9 * 1024 * 1024) + b"/>",
        b'<?xml version="1.0" encoding="UTF-16"?>' + "<a/>".encode("utf-16"),
        b'<?xml version="1.0" encoding="x-no-such"?><a/>',
        b"<a>" + b"&#0;" * 1000 + b"</a>",
        b"",
        b"<",
    ]
    for case in cases:
        _not_valid(worker.check("xml", case))
    _not_valid(worker.check("xml", b"<a/>" * (11 * 1024 * 1024 // 4)))  # over the XML size limit


def test_deeply_nested_truncated_and_garbage_pdfs(worker: Worker, signed: Signed) -> None:
    pdf = signed.pdf
    cases = [
        b"",
        b"%PDF-1.7",
        b"%PDF-1.7\n" + os.urandom(4096),
        deep_pdf(100),
        deep_pdf(5_000),
        deep_pdf(200_000),
        pdf[: len(pdf) // 2],
        pdf[:-100],
        pdf.replace(b"startxref", b"startxref\n999999999999\n%", 1),
        pdf.replace(b"/Length ", b"/Length 99999999999", 1),
        pdf + b"\n" + b"[" * 100_000,
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj trailer << /Root 1 0 R /Prev 0 >>",
    ]
    for case in cases:
        _not_valid(worker.check("pdf", case))
    # Trailing junk: pyHanko searches backwards for %%EOF at about 1 s per MB; this one must be refused at once.
    result = worker.check("pdf", pdf + bytes(40 * 1024**2))
    _not_valid(result)
    assert result["seconds"] < 2, result


def test_a_decompression_bomb_attached_to_a_signed_pdf_is_bounded(worker: Worker, signed: Signed) -> None:
    """A 768 MiB "attached XML" in a few MB: the verifier must not inflate it (it would hit RLIMIT_AS or swap)."""
    bomb = attachment_bomb(signed.pdf)
    assert len(bomb) < 5 * 1024**2
    result = worker.check("pdf", bomb)
    _not_valid(result)  # the update after the seal's signature is not allowed, and nothing blew up


def test_zip_bombs_and_traversal(worker: Worker, signed: Signed) -> None:
    refused = [
        make_zip([("bomb.pdf", bytes(60 * 1024**2))]),  # one entry over the per-entry limit
        overlapping_zip_bomb(600, 1024),  # more entries than allowed
        make_zip([(f"{i}.pdf", b"x") for i in range(501)]),
        make_zip([("x.pdf", b"%PDF")], method=zipfile.ZIP_LZMA)[:-30],  # truncated
        b"PK\x05\x06" + bytes(18),  # an empty central directory
        flate_bomb(10 * 1024**2),  # not a ZIP
    ]
    for case in refused:
        result = worker.check("zip", case)
        assert_bounded(result)
        assert result["refused"], result
    # Overlapping entries: each inflates to 40 MB; the total budget stops it well before memory or time run out.
    result = worker.check("zip", overlapping_zip_bomb(40, 40 * 1024**2))
    assert_bounded(result)
    assert result["refused"] or all(v == "invalid" for v in result["verdict"]), result  # type: ignore[union-attr]
    # Traversal: names are only labels; nothing is written anywhere, every entry is checked.
    evil = [("../../../../tmp/sealtrail-pwned.pdf", signed.pdf), ("/etc/cron.d/x.xml", signed.xml)]
    result = worker.check("zip", make_zip(evil))
    assert_bounded(result)
    assert result["verdict"] == ["valid", "valid"], result
    assert not os.path.exists("/tmp/sealtrail-pwned.pdf")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_methods_and_lying_sizes(worker: Worker, signed: Signed, method: int) -> None:
    data = make_zip([("a.xml", signed.xml)], method=method)
    result = worker.check("zip", data)
    assert_bounded(result)
    assert result["verdict"] == ["valid"], result
    # A central directory that claims a tiny size for a large entry: the real size counts, and a CRC check fails.
    lie = bytearray(data)
    cd = lie.rfind(b"PK\x01\x02")
    lie[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    result = worker.check("zip", bytes(lie))
    assert_bounded(result)
    assert result["refused"] or result["verdict"] != ["valid"], result
