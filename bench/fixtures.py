"""Inputs shared by the benchmarks: a 2-page transcript (the sample's cover and first school year) and a dev PKI."""

from __future__ import annotations

import copy
from functools import cache

import schemas
from schemas.xml import to_xml
from signer.render import RenderedDocument, Renderer, RenderJob

QR_PAYLOAD_LEN = 420  # about what a real payload (URL, token and COSE seal) is, so the QR has the real size


def two_page_transcript(n: int = 0) -> schemas.Document:
    """The THCS sample cut to its first school year: two pages of the official form (the cover with the "Quá trình học
    tập" table, then the year's results and confirmations); ``n`` varies the record id."""
    data = copy.deepcopy(schemas.load_sample("transcript_thcs"))
    data["years"] = data["years"][:1]
    data["record_id"] = f"{data['record_id']}-{n:06d}"
    return schemas.parse_document(data)


def render_job(n: int = 0) -> RenderJob:
    doc = two_page_transcript(n)
    payload = f"https://xacthuc.example.edu.vn/v/{n:08d}#" + "Q" * QR_PAYLOAD_LEN
    return RenderJob(doc, f"HB-2025-{n:012X}", payload, to_xml(doc))


@cache
def rendered_transcript() -> RenderedDocument:
    job = render_job()
    out = Renderer().render(job.doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)
    if out.page_count != 2:
        raise RuntimeError(f"the benchmark transcript should have 2 pages, it has {out.page_count}")
    return out
