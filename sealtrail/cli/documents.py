"""`sealtrail issue`, `import`, `archive`, `re-index`, `export-vc`, `translate`: making and keeping documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment, _key_errors

app = typer.Typer()


@app.command()
def issue(
    kind: Annotated[str, typer.Option(help="transcript or diploma")],
    data: Annotated[Path, typer.Option(help="JSON file with the document's data")],
    out: Annotated[Path, typer.Option(help="Where to write the signed PDF (the signed XML goes beside it)")],
) -> None:
    """Render, sign and log one document from a JSON file."""
    import schemas

    try:
        raw = json.loads(data.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"Không đọc được tệp dữ liệu / cannot read the data file {data}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if isinstance(raw, dict):
        raw.setdefault("kind", kind)
    try:
        doc = schemas.parse_document(raw)
    except schemas.SchemaError as exc:
        typer.echo("Dữ liệu không hợp lệ / the data is not valid:", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2) from exc
    if doc.kind != kind:
        typer.echo(f"The file describes a {doc.kind}, not a {kind}.", err=True)
        raise typer.Exit(2)
    dep = _deployment()
    services = dep.start_dev_pki_services() if dep.settings.mode == "development" else None
    from sqlalchemy.exc import OperationalError

    from signer.pdf import SigningError

    try:
        with _key_errors():
            issued = dep.make_issuer().issue(doc)
    except SigningError as exc:
        typer.echo(f"Chưa ký được, không có gì được phát hành / not signed, nothing was issued: {exc}", err=True)
        raise typer.Exit(1) from None
    except (OSError, OperationalError) as exc:  # the disk is full, the database went away: nothing half-done
        why = getattr(exc, "strerror", None) or str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(
            f"Không ghi được ({why}); văn bản vẫn đang chờ, chạy lại đúng lệnh này để hoàn tất / "
            f"could not write ({why}); the document is still pending: run the same command again to finish it",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        if services:
            services.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(issued.pdf)
    out.with_suffix(".xml").write_bytes(issued.xml)
    typer.echo(f"Issued {issued.doc_id}: {out} and {out.with_suffix('.xml')}")
    typer.echo(f"QR link: {issued.qr_payload.split('#', 1)[0]}")


@app.command("import")
def import_class(
    file: Annotated[Path, typer.Argument(help="A class sheet (.xlsx, one sheet per class) or a class .csv")],
    school_json: Annotated[Path, typer.Option("--school", help="JSON file describing the school")],
    school_year: Annotated[str, typer.Option(help="e.g. 2024-2025")],
    out: Annotated[Path, typer.Option(help="Folder for the validated transcripts (one JSON per pupil)")],
    homeroom_teacher: Annotated[str, typer.Option(help="Họ tên giáo viên chủ nhiệm của lớp")] = "",
    principal: Annotated[str, typer.Option(help="Họ tên hiệu trưởng xác nhận năm học")] = "",
) -> None:
    """Check a class sheet (all rows, every problem reported) and write one transcript JSON per pupil."""
    from datetime import date

    import schemas
    from schemas.importers import ClassContext, import_file

    try:
        school = schemas.School.model_validate_json(school_json.read_text(encoding="utf-8"))
        ctx = ClassContext(
            school=school,
            school_year=school_year,
            issue_date=date.today(),
            issue_place=school.province,
            homeroom_teacher=homeroom_teacher,
            principal=principal,
        )
        docs = import_file(file, ctx)
    except schemas.SchemaError as exc:
        typer.echo(f"Không nhập được {file.name} / the import was refused; nothing was imported:", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2) from exc
    out.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (out / f"{doc.student_code}.json").write_text(doc.model_dump_json(indent=1), encoding="utf-8")
    typer.echo(f"{len(docs)} transcripts checked and written to {out}")


@app.command("import-template")
def import_template(
    grade: Annotated[int, typer.Option(help="Khối 1–12")],
    out: Annotated[Path, typer.Option(help="The .xlsx file to write")],
    class_name: Annotated[str, typer.Option("--class", help="e.g. 9A1 (default: <grade>A1)")] = "",
    school_year: Annotated[str, typer.Option(help="e.g. 2025-2026")] = "",
) -> None:
    """Write an empty class sheet for one grade that `import` reads (the grade's subjects and TX columns)."""
    from schemas.importers import template_xlsx

    if not 1 <= grade <= 12:
        typer.echo("Khối phải từ 1 đến 12 / grade must be 1–12", err=True)
        raise typer.Exit(2)
    out.write_bytes(template_xlsx(grade, class_name, school_year))
    typer.echo(f"Mẫu lớp {class_name or f'{grade}A1'}: {out}")


@app.command("archive")
def archive_command(
    within_days: Annotated[
        int,
        typer.Option(min=0, help="Renew when the newest archive timestamp's TSA certificate expires within this"),
    ] = 365,
) -> None:
    """Extend issued PDFs to PAdES B-LTA (fresh validation data + document timestamp) before they need it.

    Run it daily (cron or a systemd timer); documents that are not due are skipped. The issued PDFs stay
    stored and valid; the new versions are stored beside them. Exit code 1 if any document failed."""
    from sealtrail.deployment import DeploymentError
    from signer.archiving import renew_archives

    dep = _deployment()
    try:
        services = dep.start_dev_pki_services() if dep.settings.mode == "development" else None
        try:
            report = renew_archives(dep, within_days=within_days)
        finally:
            if services:
                services.stop()
    except DeploymentError as exc:
        typer.echo(f"Chưa lưu trữ được, không có gì thay đổi / not archived, nothing changed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Lưu trữ dài hạn / long-term archiving (PAdES B-LTA): "
        f"{len(report.renewed)} đã gia hạn / renewed, {len(report.not_due)} chưa đến hạn / not due, "
        f"{len(report.failed)} lỗi / failed"
    )
    for doc_id in report.renewed:
        typer.echo(f"  + {doc_id}")
    kept = "không lưu trữ được, bản cũ vẫn dùng được / not archived, the stored copy is unchanged"
    for doc_id, why in report.failed:
        typer.echo(f"  ! {doc_id}: {kept}: {why}", err=True)
    raise typer.Exit(1 if report.failed else 0)


@app.command("re-index")
def reindex_command() -> None:
    """Fill the bulk look-up hashes (document number; name and date of birth) for documents issued before them."""
    from signer.reindex import reindex

    report = reindex(_deployment())
    typer.echo(
        f"Chỉ mục tra cứu / look-up index: {len(report.updated)} cập nhật / updated, "
        f"{report.unchanged} không đổi / unchanged, {len(report.failed)} lỗi / failed"
    )
    for doc_id, why in report.failed:
        typer.echo(f"  ! {doc_id}: {why}", err=True)
    raise typer.Exit(1 if report.failed else 0)


@app.command("export-vc")
def export_vc_command(
    doc_id: Annotated[str, typer.Argument(help="The document's id, e.g. VB-2026-…")],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the credential (.jwt: compact JWS; .json: decoded)")
    ],
) -> None:
    """Export an issued diploma or transcript as a signed W3C Verifiable Credential (VC-JOSE-COSE, vc+jwt)."""
    from signer.credentials import ExportError, export_vc, write_credential

    try:
        token = export_vc(_deployment(), doc_id)
    except ExportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    write_credential(out, token)
    typer.echo(f"Chứng chỉ số đã ghi vào / credential written to {out} (check it: sealtrail verify {out})")


@app.command("translate")
def translate_command(
    doc_id: Annotated[str, typer.Argument(help="The issued original's id, e.g. HB-2025-… or VB-2025-…")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the translation's PDF")] = None,
) -> None:
    """Make (or fetch) the signed English translation of an issued transcript or diploma, sealed by the school."""
    from signer.pdf import SigningError
    from signer.translation import TranslationError, translate

    dep = _deployment()
    # as `issue`: in development the dev PKI's OCSP/CRL/TSA answer only while this command runs
    services = dep.start_dev_pki_services() if dep.settings.mode == "development" else None
    try:
        done = translate(dep, doc_id)
    except TranslationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except SigningError as exc:
        typer.echo(
            f"Chưa ký được, không có bản dịch nào được phát hành / not signed, nothing was issued: {exc}", err=True
        )
        raise typer.Exit(1) from None
    finally:
        if services is not None:
            services.stop()
    made = "Đã tạo bản dịch / translation issued" if done.created else "Bản dịch đã có / translation already issued"
    typer.echo(f"{made}: {done.record.id} (bản gốc / original {doc_id})")
    if out is not None:
        out.write_bytes(done.pdf)
        typer.echo(f"PDF: {out} (check it: sealtrail verify {out})")
