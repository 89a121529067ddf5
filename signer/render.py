"""Rendering documents: Jinja2 templates + WeasyPrint → PDF/A-3b with the canonical XML attached (AFRelationship
/Data), a QR code on every page, and empty signature fields where each signer's appearance goes.

Templates are looked up first in the configured template directory (a province overrides a file by giving one
of the same name), then in the packaged ones. Nothing is fetched while rendering: only data: URLs load.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import qrcode
import qrcode.image.svg
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.xmp_xml import MetadataStream, parse_xmp
from pyhanko.sign.fields import FieldMDPAction, FieldMDPSpec, MDPPerm, SigFieldSpec, append_signature_field
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

import schemas
from schemas.programme import REGIME_NAMES, regime
from signer import english

PACKAGED = Path(__file__).parent / "templates"
PX_TO_PT = 0.75
TEMPLATES = {
    "transcript": "transcript.html.j2",
    "diploma": "diploma.html.j2",
    "copy": "copy.html.j2",
    "translation": "translation.html.j2",  # English, for either kind of original (signer/english.py)
}
XML_NAMES = {
    "transcript": "hocba.xml",
    "diploma": "vanbang.xml",
    "copy": "bansao.xml",
    "translation": "translation.xml",
}
LOCKING_ROLE = "seal"  # the institution's seal signs last; its field carries the lock from the start
ROLE_TITLES = {"homeroom_teacher": "GIÁO VIÊN CHỦ NHIỆM", "principal": "HIỆU TRƯỞNG", "seal": "XÁC NHẬN CỦA NHÀ TRƯỜNG"}


@dataclass(frozen=True)
class SignatureSlot:
    role: str
    field_name: str
    page: int
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class RenderedDocument:
    pdf: bytes
    slots: tuple[SignatureSlot, ...]
    page_count: int


@dataclass(frozen=True)
class RenderJob:
    """One document of a batch: the arguments of `Renderer.render`."""

    doc: schemas.Document
    doc_id: str
    qr_payload: str
    xml: bytes


def date_line(place: str, day: date) -> str:
    """'Hà Nội, ngày 05 tháng 09 năm 2025' (Decree 30/2020: leading zero for days 1–9 and months 1–2)."""
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"{place}, ngày {day.day:02d} tháng {month} năm {day.year}"


NO_FETCHING = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def qr_png_data_uri(payload: str) -> str:
    """The QR code as a 1-bit PNG, 4 pixels per module, drawn without smoothing (image-rendering: pixelated).

    Used on the pages instead of the SVG: WeasyPrint parses and draws an SVG path of a few thousand modules
    again on every page, which took about half of a transcript's render time (docs/performance.md). The PNG
    is decoded once per document and embedded once; its pixel grid is exact, so scanning is unaffected.
    """
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, box_size=4)
    qr.add_data(payload)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().get_image().convert("1").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def qr_svg_data_uri(payload: str) -> str:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, box_size=10)
    qr.add_data(payload)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(image_factory=qrcode.image.svg.SvgPathFillImage).save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _gender(value: int) -> str:
    return {1: "Nam", 2: "Nữ"}.get(int(value), "")


def _num(value: object) -> str:
    return "" if value is None else str(value).replace(".", ",")


def keep_xmp(writer: IncrementalPdfFileWriter) -> None:
    """Make pyHanko update the document's existing XMP (which carries the PDF/A-3 claim) instead of replacing it."""
    if "/Metadata" not in writer.root:
        return
    stream = writer.root["/Metadata"]
    if isinstance(stream, MetadataStream):
        return
    writer.root["/Metadata"] = writer.add_object(MetadataStream.from_xmp(parse_xmp(io.BytesIO(stream.data))))
    writer.update_root()


def _dedupe_associated_files(writer: IncrementalPdfFileWriter) -> None:
    """WeasyPrint lists each attachment twice in the catalogue's /AF; PDF/A-3 wants each associated file once."""
    refs = writer.root.raw_get("/AF") if "/AF" in writer.root else None
    if refs is None:
        return
    unique = []
    for ref in refs:
        if ref not in unique:
            unique.append(ref)
    if len(unique) != len(refs):
        writer.root["/AF"] = generic.ArrayObject(unique)
        writer.update_root()


class Renderer:
    """Built once (fonts, stylesheet and templates loaded once), then renders many documents."""

    def __init__(self, template_dir: Path | None = None) -> None:
        self.template_dir = template_dir
        loaders = [FileSystemLoader(str(template_dir))] if template_dir else []
        self.env = Environment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(PACKAGED))]),
            autoescape=select_autoescape(["html", "j2"]),
            undefined=StrictUndefined,
        )
        self.env.filters.update(gender=_gender, num=_num, d=lambda v: v.strftime("%d/%m/%Y") if v else "")
        self.env.globals.update(date_line=date_line, ROLE_TITLES=ROLE_TITLES, regime=regime, REGIME_NAMES=REGIME_NAMES)
        english.install(self.env)
        self.font_config = FontConfiguration()
        css_source = self.env.loader.get_source(self.env, "document.css")[0]  # type: ignore[union-attr]
        self.stylesheet = CSS(string=css_source, font_config=self.font_config)

    @staticmethod
    def _qr_uri(payload: str) -> str:
        return qr_png_data_uri(payload)

    def render_many(self, jobs: Iterable[RenderJob], *, workers: int = 0) -> Iterator[RenderedDocument]:
        """Render a batch, yielding results in the jobs' order.

        With ``workers=0`` everything happens in this process, with this Renderer. With ``workers >= 1`` the
        documents are laid out in that many worker processes (WeasyPrint holds the GIL, so threads would not
        help), each with its own Renderer built once for the whole batch. At most ``4 * workers`` documents are
        in flight, so memory stays flat however long the batch is.
        """
        if workers < 1:
            for job in jobs:
                yield self.render(job.doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)
            return
        pool = self._pool(workers)
        pending: deque[Future[RenderedDocument]] = deque()
        for job in jobs:
            pending.append(pool.submit(_render_in_worker, job))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        """The worker processes, started on first use and kept for later batches (starting one costs seconds)."""
        pools: dict[int, ProcessPoolExecutor] = self.__dict__.setdefault("_pools", {})
        if workers not in pools:
            context = multiprocessing.get_context("spawn")  # no fork: the parent may hold threads, sessions, tokens
            pools[workers] = ProcessPoolExecutor(
                workers, context, initializer=_init_worker, initargs=(self.template_dir,)
            )
        return pools[workers]

    def close(self) -> None:
        """Stop the worker processes of `render_many`, if any were started."""
        for pool in self.__dict__.pop("_pools", {}).values():
            pool.shutdown()

    def render(self, doc: schemas.Document, *, doc_id: str, qr_payload: str, xml: bytes) -> RenderedDocument:
        extra = {"original_qr": self._qr_uri(doc.original_qr)} if isinstance(doc, schemas.Translation) else {}
        html = self.env.get_template(TEMPLATES[doc.kind]).render(
            doc=doc, doc_id=doc_id, qr=self._qr_uri(qr_payload), slots=self._slot_roles(doc), **extra
        )
        document = HTML(string=html, url_fetcher=NO_FETCHING).render(
            stylesheets=[self.stylesheet], font_config=self.font_config
        )
        slots = self._find_slots(document)
        attachment = Attachment(
            string=xml.decode("utf-8"),
            name=XML_NAMES[doc.kind],
            relationship="Data",
            description=english.ATTACHMENT if doc.kind == "translation" else "Dữ liệu có cấu trúc của văn bản (XML)",
        )
        pdf = document.write_pdf(pdf_variant="pdf/a-3b", attachments=[attachment], uncompressed_pdf=False)
        return RenderedDocument(self._add_fields(pdf, slots), slots, len(document.pages))

    @staticmethod
    def _slot_roles(doc: schemas.Document) -> list[str]:
        if isinstance(doc, schemas.Transcript):
            return ["homeroom_teacher", "principal", "seal"]
        if isinstance(doc, schemas.Diploma):
            return ["principal", "seal"]
        return ["seal"]

    @staticmethod
    def _find_slots(document: Any) -> tuple[SignatureSlot, ...]:
        slots = []
        for page_no, page in enumerate(document.pages):
            for anchor, (x1, y1, x2, y2) in page.anchors.items():
                if not anchor.startswith("slot-"):
                    continue
                role = anchor.removeprefix("slot-")
                box = (x1 * PX_TO_PT, (page.height - y2) * PX_TO_PT, x2 * PX_TO_PT, (page.height - y1) * PX_TO_PT)
                rounded = (round(box[0], 2), round(box[1], 2), round(box[2], 2), round(box[3], 2))
                slots.append(SignatureSlot(role, f"sig_{role}", page_no, rounded))
        return tuple(slots)

    @staticmethod
    def _add_fields(pdf: bytes, slots: tuple[SignatureSlot, ...]) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        keep_xmp(writer)
        _dedupe_associated_files(writer)
        for slot in slots:
            locking = slot.role == LOCKING_ROLE
            spec = SigFieldSpec(
                slot.field_name,
                on_page=slot.page,
                box=slot.box,  # type: ignore[arg-type]  # pyHanko annotates int boxes; PDF rectangles are real numbers
                field_mdp_spec=FieldMDPSpec(FieldMDPAction.ALL) if locking else None,
                doc_mdp_update_value=MDPPerm.NO_CHANGES if locking else None,
            )
            append_signature_field(writer, spec)
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()


_worker_renderer: Renderer | None = None


def _init_worker(template_dir: Path | None) -> None:
    global _worker_renderer
    _worker_renderer = Renderer(template_dir)


def _render_in_worker(job: RenderJob) -> RenderedDocument:
    assert _worker_renderer is not None, "the worker was started without its initializer"
    return _worker_renderer.render(job.doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)


class AppearanceRenderer:
    """Visible signature appearances, laid out by WeasyPrint so Vietnamese text is shaped and fonts embedded."""

    CSS = """
    @page { size: %(w).2fpt %(h).2fpt; margin: 1.2mm; }
    html { font-family: "Liberation Serif", serif; color: #1a3c8f; font-size: 7.5pt; line-height: 1.15; }
    body { margin: 0; border: 0.8pt solid #1a3c8f; border-radius: 2pt; padding: 0.8mm 1.2mm; }
    p { margin: 0 0 0.5mm; }
    .who { font-weight: bold; }
    """

    def __init__(self) -> None:
        self.font_config = FontConfiguration()

    def render(self, signer: str, when: str, width: float, height: float) -> bytes:
        from html import escape

        html = (
            f"<p>Ký số bởi / Signed by: <span class='who'>{escape(signer)}</span></p>"
            f"<p>Thời gian ký / Signed at:<br>{escape(when)}</p>"
        )
        css = CSS(string=self.CSS % {"w": width, "h": height}, font_config=self.font_config)
        pdf: bytes = HTML(string=f"<html lang='vi'><body>{html}</body></html>", url_fetcher=NO_FETCHING).write_pdf(
            stylesheets=[css], font_config=self.font_config
        )
        return pdf
