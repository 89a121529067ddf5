"""`sealtrail batch submit|status|cancel`: queue checked documents as one batch job, follow it, cancel it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment

app = typer.Typer()
batch_app = typer.Typer(help="Batch jobs: queue many documents at once, follow and cancel them.", no_args_is_help=True)

app.add_typer(batch_app, name="batch")


@batch_app.command("submit")
def batch_submit(
    files: Annotated[list[Path], typer.Argument(help="Document JSON files, or folders of them (e.g. from `import`)")],
    school: Annotated[str, typer.Option(help="The school's code (mã trường); every document must be of it")],
) -> None:
    """Check every document (all or nothing, every problem reported) and queue them as one batch job."""
    import schemas
    from jobs import batches as jobs

    paths = sorted(f for p in files for f in (sorted(p.glob("*.json")) if p.is_dir() else [p]))
    items, problems = [], []
    for path in paths:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            doc = schemas.parse_document(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path.name}: không đọc được / cannot read: {exc}")
            continue
        except schemas.SchemaError as exc:
            problems += [f"{path.name}: {p}" for p in exc.problems]
            continue
        code = doc.school.code if isinstance(doc, schemas.Transcript) else doc.issuer.code
        if code != school:
            problems.append(f"{path.name}: văn bản của trường {code}, không phải {school} / another school's document")
        items.append((raw, doc))
    if problems or not items:
        typer.echo("Không có gì được xếp hàng / nothing was queued:", err=True)
        for problem in problems or ["không có tệp JSON nào / no JSON files"]:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2)
    submitted = jobs.submit_batch(_deployment(), items, school_code=school, created_by="cli", run_here=False)
    typer.echo(f"Batch {submitted.batch_id}: {len(items)} documents queued (run `sealtrail worker`)")


@batch_app.command("status")
def batch_status(batch_id: Annotated[str, typer.Argument(help="The batch's id")]) -> None:
    """Print a batch's progress as JSON (counts by state, failures with reasons, each document)."""
    from jobs import batches as jobs

    progress = jobs.batch_progress(_deployment(), batch_id)
    if progress is None:
        typer.echo(f"Không có lô {batch_id} / no such batch", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(progress, ensure_ascii=False, indent=1))


@batch_app.command("cancel")
def batch_cancel(batch_id: Annotated[str, typer.Argument(help="The batch's id")]) -> None:
    """Cancel a batch's documents not started yet (those already issued stay issued)."""
    from jobs import batches as jobs

    dep = _deployment()
    if jobs.batch_progress(dep, batch_id) is None:
        typer.echo(f"Không có lô {batch_id} / no such batch", err=True)
        raise typer.Exit(1)
    jobs.cancel_batch(dep, batch_id)
    typer.echo(json.dumps(jobs.batch_progress(dep, batch_id)["counts"]))  # type: ignore[index]
