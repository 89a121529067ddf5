"""`sealtrail exchange export|import`: transcripts as data-exchange records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment

app = typer.Typer()
exchange_app = typer.Typer(
    help="Data-exchange records with school software and the Ministry's store (unofficial field names).",
    no_args_is_help=True,
)

app.add_typer(exchange_app, name="exchange")


@exchange_app.command("export")
def exchange_export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the records (JSON array)")],
    school: Annotated[
        str | None, typer.Option(help="Export this school's issued transcripts from the registry")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Or convert one transcript JSON file (NEW, version 1)")] = None,
    since: Annotated[str | None, typer.Option(help="Only records updated at or after YYYY-MM-DDTHH:mm:ss")] = None,
) -> None:
    """Write transcripts as data-exchange records: one per pupil and school year, with NEW/UPDATE/CANCEL versions."""
    from datetime import UTC, datetime

    import schemas
    from schemas.exchange import parse_time, transcript_to_records
    from signer.exchange import school_records, write_json

    if (school is None) == (data is None):
        typer.echo("Chọn đúng một: --school hoặc --data / give exactly one of --school and --data", err=True)
        raise typer.Exit(2)
    try:
        if data is not None:
            doc = schemas.parse_document(data.read_bytes())
            if not isinstance(doc, schemas.Transcript):
                raise schemas.SchemaError([schemas.ValidationProblem("kind", "chỉ học bạ / transcripts only")])
            records = transcript_to_records(doc, updated=datetime.now(UTC), status="unsigned")
        else:
            assert school is not None
            records = school_records(_deployment(), school, parse_time(since) if since else None)
    except (schemas.SchemaError, ValueError, OSError) as exc:
        typer.echo(f"Không xuất được / nothing exported:\n{exc}", err=True)
        raise typer.Exit(1) from None
    write_json(out, records)
    typer.echo(f"{len(records)} bản ghi / records written to {out}")


@exchange_app.command("import")
def exchange_import(
    records: Annotated[Path, typer.Argument(help="A JSON file of data-exchange records")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the rebuilt transcripts (one JSON per học bạ)")],
    state: Annotated[
        Path | None, typer.Option(help="The records held so far (default: OUT/.exchange-state.json)")
    ] = None,
) -> None:
    """Apply records (newer versions replace older, CANCEL withdraws) and rebuild our transcript JSON files."""
    import schemas
    from signer.exchange import import_records

    state_file = state or out / ".exchange-state.json"
    try:
        result, written = import_records(records, state_file, out)
    except (schemas.SchemaError, ValueError, OSError) as exc:
        typer.echo(f"Không nhập gì / nothing imported:\n{exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"áp dụng / applied {len(result.applied)}, huỷ / cancelled {len(result.cancelled)}, "
        f"bỏ qua / ignored {len(result.ignored)}; {len(written)} học bạ in {out}"
    )
    for line in result.ignored:
        typer.echo(f"  - {line}")
