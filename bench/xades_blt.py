"""XAdES B-LT benchmark: one XML signature with its timestamp and the OCSP/CRL data of the signer's and the TSA's
certificates, against the live loopback dev PKI (OCSP responder, CRLs, TSA over HTTP).

SealTrail: one `XadesSigner` for the batch; its `RevocationCache` asks for each certificate's status once and
reuses the answer for later signatures (at most 60 s, never past the answer's nextUpdate). Baseline, same run:
the same signer with the reuse window set to 0, i.e. the status fetched again for every signature (how B-LT XML
signing worked before). Both sign the same documents; every signed XML is checked with our XmlVerifier.
Run inside the batch benchmark, which has the dev PKI's services running already.
"""

from __future__ import annotations

import schemas
from bench.common import Figure, per_item
from schemas.xml import to_xml
from sealtrail.deployment import Deployment
from signer.xades import XadesSigner, XmlSignatureRequest, envelope


def xades_figure(dep: Deployment, n: int) -> Figure:
    """The B-LT XML signature figure, against ``dep``'s dev PKI services (which must be running)."""
    canonical = to_xml(schemas.parse_document(schemas.load_sample("transcript_thcs")))
    backend = dep.signing_keys["seal"]
    request = XmlSignatureRequest("seal", "Con dấu")
    signed: list[bytes] = []

    def signer_with(reuse_seconds: float) -> XadesSigner:
        roots, others = dep.trust_roots, dep.intermediates
        signer = XadesSigner(timestamp_urls=dep.timestamp_urls, trust_roots=roots, other_certs=others)
        signer.revocation.reuse_seconds = reuse_seconds
        return signer

    ours, baseline = signer_with(60), signer_with(0)
    for signer in (ours, baseline):  # warm both (imports, TLS context, the first fetch)
        signed.append(signer.sign(envelope(canonical), backend, request))
    base_t = per_item(lambda: signed.append(baseline.sign(envelope(canonical), backend, request)), n)
    ours_t = per_item(lambda: signed.append(ours.sign(envelope(canonical), backend, request)), n)
    for xml in (signed[-1], signed[2]):
        # The seal's signature alone: the document as a whole fails the transcript's signer policy (the teacher's and
        # principal's signatures are missing), so the figure checks the signature itself and that the policy is the
        # only document-level finding.
        found = dep.xml_verifier.verify(xml)
        sig = found.signatures[0] if found.signatures else None
        others = {r.code for r in found.reasons} - {"SIGNER_POLICY_FAILURE"}
        if sig is None or sig.indication != "valid" or not sig.long_term or others:
            raise RuntimeError(f"a benchmark XAdES B-LT signature does not verify: {found}")
    return Figure(
        "xades.blt",
        "XAdES B-LT signature (timestamp + OCSP/CRL)",
        ours_t * 1000,
        base_t * 1000,
        "ms",
        f"wall, {n} signatures each; status fetches: {ours.revocation.fetches} ours, "
        f"{baseline.revocation.fetches} baseline (warm-up included); baseline: status fetched per signature",
    )
