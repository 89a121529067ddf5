"""The one place where signer/ relies on signxml behaviour that is not public API (pinned: signxml 5.2.0).

Checked by tests/test_library_canaries.py, which fails loudly when a new signxml version changes it.

* :class:`InteroperableXAdESSigner`: signxml digests SignedProperties and KeyInfo with the configured (exclusive)
  c14n but writes no Transform for it; other verifiers (xmlsec1, DSS) then apply the XML-DSig default, inclusive
  c14n, and the digests differ. signxml offers no public hook for a reference's transforms, so the internal
  ``XAdESSigner._add_reference_to_signed_info`` is extended (and ``SignatureProcessor._find`` used to find the
  reference it just added) to name the transform explicitly, so every verifier computes the same digest.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from signxml.xades import XAdESSigner

SIGNXML_VERSION = "5.2.0"  # the version this seam was written against (pyproject pins it)
_DS_NS = "http://www.w3.org/2000/09/xmldsig#"


class InteroperableXAdESSigner(XAdESSigner):
    """signxml's XAdESSigner whose extra references (SignedProperties, KeyInfo) name their c14n transform."""

    def _add_reference_to_signed_info(self, sig_root: Any, node_to_reference: Any, **attrs: Any) -> None:
        super()._add_reference_to_signed_info(sig_root, node_to_reference, **attrs)  # type: ignore[no-untyped-call]
        reference = self._find(sig_root, "SignedInfo")[-1]  # type: ignore[no-untyped-call]  # (signxml is unannotated)
        transforms = etree.Element(f"{{{_DS_NS}}}Transforms")
        etree.SubElement(transforms, f"{{{_DS_NS}}}Transform", Algorithm=self.c14n_alg.value)
        reference.insert(0, transforms)
