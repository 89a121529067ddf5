"""The `sealtrail` command line: the installation's own commands (dev-pki, demo, serve, worker, backup, restore);
every other command group is its own module in this package, added here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli import apikeys, batch, documents, exchange, hsm, ledger, verify
from sealtrail.cli.accounts import register as _register_accounts
from sealtrail.cli.common import _deployment, _key_errors
from sealtrail.cli.identity import register as _register_identity
from sealtrail.cli.install import register as _register_install
from sealtrail.cli.signing import register as _register_signing
from sealtrail.cli.trust import register as _register_trust

app = typer.Typer(
    help="SealTrail: học bạ số và văn bằng số — issue, sign, log and verify Vietnamese school records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_register_accounts(app)
for _group in (batch, documents, verify, apikeys, exchange, ledger, hsm):
    app.add_typer(_group.app)
_register_signing(app)  # signers' own keys (#5)
_register_trust(app)
_register_install(app)
_register_identity(app)


@app.command("dev-pki")
def dev_pki() -> None:
    """Create the development PKI (root, issuing CA, teacher, principal, school seal, TSA, OCSP) in the data dir."""
    dep = _deployment()
    pki = dep.dev_pki
    typer.echo(f"Development PKI (DEV ONLY, never for real documents) in {pki.directory}")
    for label in ("root", "issuing", "homeroom_teacher", "principal", "seal", "tsa", "ocsp"):
        typer.echo(f"  {label:18} {pki.cert(label).subject.human_friendly}")
    typer.echo(f"  services           {pki.service_prefix} (OCSP, CRL, timestamps)")


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Also write the signed files and trust anchors here")] = None,
) -> None:
    """Set up everything on SQLite with a dev PKI and a sample school, and issue sample documents."""
    from sealtrail.demo import run_demo

    run_demo(_deployment(), out)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Start the web service (public verification pages, public log, API)."""
    import uvicorn

    from sealtrail.install import production_problems
    from sealtrail.ledgerwiring import Checkpointer
    from sealtrail.logs import configure_logging
    from sealtrail.web.app import create_app

    dep = _deployment()
    problems = production_problems(dep.settings)
    if problems:
        typer.echo("Không khởi động được ở chế độ production / cannot start in production mode:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2)
    configure_logging(dep.settings)
    if dep.settings.mode == "development":
        dep.start_dev_pki_services()
    application = create_app(dep.settings)
    application.state.upload_checker.start()  # the upload check workers, pre-started before the first upload
    Checkpointer(dep).start()
    typer.echo(f"SealTrail on http://{host}:{port}/  (health: /healthz, /readyz, /metrics; log: /log/checkpoint)")
    # proxy_headers=False: X-Forwarded-For is read only from SEALTRAIL_TRUSTED_PROXIES (sealtrail.web.app), not from
    # uvicorn's default of trusting any local peer
    uvicorn.run(
        application, host=host, port=port, log_level="warning", log_config=None, access_log=False, proxy_headers=False
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Documents signed at the same time by this worker", min=1)] = 1,
) -> None:
    """Run queued batch jobs. PostgreSQL: a procrastinate worker (start any number, on any machines; stop with
    Ctrl-C or SIGTERM). SQLite: `serve` runs batches itself; this runs the open ones to the end, then exits."""
    from jobs import batches as jobs
    from sealtrail.deployment import wire_jobs

    wire_jobs()
    dep = _deployment()
    services = dep.start_dev_pki_services() if dep.settings.mode == "development" else None
    try:
        if jobs.is_postgres(dep.engine):
            typer.echo(f"SealTrail worker on queue {jobs.QUEUE}, concurrency {concurrency}")
            jobs.run_worker(dep, concurrency)
        else:
            done = jobs.run_open_items(dep)
            typer.echo(f"{done} batch documents processed")
    finally:
        if services:
            services.stop()


@app.command("backup")
def backup_command(
    out: Annotated[Path, typer.Option(help="A new directory for the backup (database, documents, manifest)")],
) -> None:
    """Back up the database (online: SQLite's backup API, or pg_dump) and stored documents; keys are separate."""
    from sealtrail.backup import backup

    with _key_errors():
        manifest = backup(_deployment(), out)
    typer.echo(f"Đã sao lưu / backed up: {out} ({manifest['database']}, {manifest['ledger_size']} log entries)")


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Option("--from", help="A directory made by `sealtrail backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the database is replaced by the backup")] = False,
) -> None:
    """Replace the database with a backup (stop SealTrail first). Start-up then checks it against the published log."""
    from ledger.store import LedgerForkError
    from sealtrail.backup import restore
    from sealtrail.ledgerwiring import check_not_forked

    if not yes:
        typer.echo("Thêm --yes để xác nhận / add --yes: the current database will be replaced", err=True)
        raise typer.Exit(2)
    with _key_errors():
        dep = _deployment()
        manifest = restore(dep, source)
        typer.echo(f"Đã khôi phục / restored: {source} (made {manifest['created_at']})")
        try:
            check_not_forked(dep)
        except LedgerForkError as exc:
            typer.echo(f"CẢNH BÁO / WARNING: {exc}", err=True)
            raise typer.Exit(1) from None


def main() -> None:  # pragma: no cover
    sys.exit(app())
