"""`sealtrail demo`: a sample school with issued, signed and logged documents on a fresh checkout.

The demo only supplies development settings and sample data; the issuer is built by the Deployment."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlmodel import Session, col, select

import schemas
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment

DEMO_SAMPLES = ("class_9a1", "diploma_thpt", "diploma_bachelor")


def _sample_documents() -> list[schemas.Document]:
    docs: list[schemas.Document] = []
    for name in DEMO_SAMPLES:
        data = schemas.load_sample(name)
        items = data if isinstance(data, list) else [data]
        docs.extend(schemas.parse_document(item) for item in items)
    return docs


def _write_trust(dep: Deployment, trust_dir: Path) -> None:
    dep.export_trust(trust_dir)


def run_demo(dep: Deployment, out: Path | None) -> None:
    from sealtrail.ledgerwiring import check_not_forked, ledger_for, publish_checkpoint

    check_not_forked(dep)

    settings = dep.settings
    typer.echo(f"Data directory: {settings.resolved_data_dir}")
    with Session(dep.engine) as session:
        existing = session.exec(select(DocumentRecord).where(DocumentRecord.status == DocumentStatus.ISSUED)).all()
    if existing:
        typer.echo(f"{len(existing)} documents were already issued in this data directory; reusing them.")
    else:
        services = dep.start_dev_pki_services()
        try:
            issuer = dep.make_issuer()
            for doc in _sample_documents():
                issued = issuer.issue(doc)
                typer.echo(f"  issued {issued.doc_id} ({doc.kind}) for {doc.holder.masked_name}")
        finally:
            if services:
                services.stop()
    ledger, _vkey = ledger_for(dep)
    publish_checkpoint(dep)
    with Session(dep.engine) as session:
        records = session.exec(
            select(DocumentRecord)
            .where(DocumentRecord.status == DocumentStatus.ISSUED)
            .order_by(col(DocumentRecord.leaf_index))
        ).all()
        for record in records:
            session.expunge(record)
    base = settings.public_base_url.rstrip("/")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        blobs = dep.blobs
        index = []
        with dep.engine.connect() as conn:
            for record in records:
                assert record.sha256_pdf and record.sha256_xml and record.leaf_index is not None
                (out / f"{record.id}.pdf").write_bytes(blobs.get(record.sha256_pdf, "pdf"))
                (out / f"{record.id}.xml").write_bytes(blobs.get(record.sha256_xml, "xml"))
                (out / f"{record.id}.tlog-proof").write_bytes(ledger.tlog_proof(conn, record.leaf_index))
                index.append(
                    {"id": record.id, "kind": record.kind, "url": f"{base}/v/{record.token}", "leaf": record.leaf_index}
                )
        (out / "documents.json").write_text(json.dumps(index, ensure_ascii=False, indent=2), encoding="utf-8")
        _write_trust(dep, out / "trust")
        typer.echo(f"Signed PDFs, XMLs, log proofs and trust anchors written to {out.resolve()}")
    typer.echo("\nOpen these after `sealtrail serve` (the QR codes on the PDFs point here):")
    for record in records:
        typer.echo(f"  {record.kind:10} {record.id}  {base}/v/{record.token}")
    typer.echo(f"  public log checkpoint: {base}/log/checkpoint")
