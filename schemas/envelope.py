"""The signed XML envelope's format, shared by the signing side (signer.xades) and the verifier, which must not
import signer (docs: DESIGN.md's layout): the namespaces, the data element's Id, and how the canonical document is
taken back out of an envelope. Nothing here signs or verifies."""

from __future__ import annotations

from lxml import etree

from schemas.xml import parse_xml_securely

SIGNED_NS = "urn:sealtrail:signed:1"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
DATA_ID = "DuLieu"


def q(tag: str) -> str:
    """An element name in the envelope's namespace."""
    return f"{{{SIGNED_NS}}}{tag}"


def signed_data(signed_xml: bytes) -> bytes:
    """The canonical document carried inside a signed envelope (what the signatures cover)."""
    root = parse_xml_securely(signed_xml)
    data = root.find(q("DuLieu"))
    if root.tag != q("VanBanKySo") or data is None or len(data) != 1:
        raise ValueError("this is not a SealTrail signed XML document (no VanBanKySo/DuLieu)")
    return canonical_bytes(data[0])


def exc_c14n(element: etree._Element) -> bytes:
    """Exclusive XML canonicalisation: the same bytes wherever the element sits (what every digest here uses)."""
    canonical: bytes = etree.tostring(element, method="c14n", exclusive=True)
    return canonical


def canonical_bytes(element: etree._Element) -> bytes:
    """The bytes ``schemas.xml.to_xml`` writes for this element: an XML declaration and the element's exclusive
    C14N form (empty elements as start and end tag, as to_xml writes them), so hashes match the issued data."""
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + exc_c14n(element)
