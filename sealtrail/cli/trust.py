"""`sealtrail trust list|import`: the installation's trust list (verifier/trustlist.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment

trust_app = typer.Typer(
    help="The trust list (trusted root CAs and intermediates) every check uses: list it, import a published root.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(trust_app, name="trust")


@trust_app.command("list")
def trust_list(
    shipped: Annotated[
        bool, typer.Option("--shipped", help="List Vietnam's national list shipped with SealTrail instead")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Every trusted root and intermediate: subject, SHA-256, validity and where it came from."""
    from verifier.trustlist import TrustListError, build_trust_list

    try:
        trust = build_trust_list(national=True) if shipped else _deployment().trust_list
    except TrustListError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    summary = trust.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{summary['roots']} chứng thư gốc / roots, {summary['intermediates']} trung gian / intermediates "
        f"({summary['expired_intermediates']} hết hạn, giữ lại cho văn bản cũ / expired, kept for old documents)"
    )
    for cert in summary["certificates"]:  # type: ignore[attr-defined]
        typer.echo(f"  {cert['kind']:12} {cert['sha256']}  {cert['not_after'][:10]}  {cert['subject']}")
        typer.echo(f"  {'':12} {cert['source']}")
    for rejected in summary["rejected"]:  # type: ignore[attr-defined]
        typer.echo(f"  KHÔNG TIN / REJECTED {rejected['sha256']}  {rejected['subject']}: {rejected['reason']}")
    if not summary["roots"]:
        typer.echo(
            "Chưa có chứng thư gốc nào: đặt SEALTRAIL_TRUST_DIR hoặc SEALTRAIL_TRUST_NATIONAL=true / "
            "no trusted root: set SEALTRAIL_TRUST_DIR or SEALTRAIL_TRUST_NATIONAL=true",
            err=True,
        )
        raise typer.Exit(1)


@trust_app.command("import")
def trust_import(
    file: Annotated[Path, typer.Argument(help="The CA certificate (PEM, DER or P7B) as downloaded")],
    sha256: Annotated[
        str,
        typer.Option("--sha256", help="The SHA-256 fingerprint published by the CA or the root authority"),
    ],
) -> None:
    """Add a root or issuing CA certificate to SEALTRAIL_TRUST_DIR, only if its SHA-256 matches the published one.

    A root with the name of a trusted (or national) root but another key is refused: a look-alike is never trusted."""
    from verifier.trustlist import TrustListError, import_certificate

    dep = _deployment()
    directory = dep.settings.trust_dir
    if directory is None:
        typer.echo(
            "Đặt SEALTRAIL_TRUST_DIR là thư mục danh sách tin cậy trước / set SEALTRAIL_TRUST_DIR to the trust list "
            "folder first",
            err=True,
        )
        raise typer.Exit(2)
    try:
        existing = dep.trust_list if directory.is_dir() else None
        target, cert = import_certificate(file, sha256, directory, trusted=existing)
    except TrustListError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Đã nhập / imported: {cert.subject.human_friendly} → {target}")
