"""`sealtrail identity add|list|retire`: signing identities per issuer (registry.identities); every change is
audited and logged in the public log (hash only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment

identity_app = typer.Typer(
    help="Signing identities: each school's seal and each signer's certificate, where the key lives, for which "
    "role and organisation.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


def _audit(dep: object, op: str, row: object) -> None:
    from workflow.audit import AuditTrail

    AuditTrail(dep).record(
        None,
        "cli",
        "key.change",  # a security-relevant action: the audit row's SHA-256 goes into the public log
        org=row.organisation,  # type: ignore[attr-defined]
        target=f"identity:{row.id}",  # type: ignore[attr-defined]
        detail={"op": op, "role": row.role, "cert_sha256": row.cert_sha256, "digest": row.digest()},  # type: ignore[attr-defined]
    )


@identity_app.command("add")
def identity_add(
    org: Annotated[str, typer.Option(help="The issuer's code (mã trường)")],
    role: Annotated[str, typer.Option(help="seal, principal or homeroom_teacher")],
    key: Annotated[str, typer.Option(help="Where the key lives: hsm:<label>, agent:<signer id>, remote:<credential>")],
    cert: Annotated[Path, typer.Option(help="The certificate (PEM/DER), optionally followed by its issuing CAs")],
    org_name: Annotated[str | None, typer.Option(help="The organisation's name as in the certificate's O")] = None,
    tax_code: Annotated[
        str | None, typer.Option(help="Its tax code (MST), if the certificate carries UID MST:…")
    ] = None,
    holder: Annotated[str | None, typer.Option(help="The person's full name (CN), for personal certificates")] = None,
) -> None:
    """Register a certificate as a signing identity, after checking that it names the organisation or the person,
    that it is valid now, not revoked and chains to the trust list."""
    from sqlmodel import Session, select

    from accounts.models import Organisation
    from registry.identities import IdentityError, add_identity, parse_chain
    from signer.precheck import chain_problem

    dep = _deployment()
    if org_name is None:
        with Session(dep.engine) as session:
            found = session.exec(select(Organisation).where(Organisation.code == org)).first()
        if found is None:
            typer.echo(
                f"Không biết đơn vị {org}; cho biết --org-name / unknown organisation {org}: give --org-name", err=True
            )
            raise typer.Exit(2)
        org_name = found.name
    try:
        chain = parse_chain(cert.read_bytes())
    except (OSError, ValueError) as exc:
        typer.echo(f"Không đọc được chứng thư số / cannot read the certificate {cert}: {exc}", err=True)
        raise typer.Exit(2) from None
    problem = chain_problem(chain[0], chain[1:], dep.trust_roots, dep.intermediates) if chain else None
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    try:
        row = add_identity(
            dep.engine,
            role=role,
            organisation=org,
            organisation_name=org_name,
            key_location=key,
            chain=chain,
            tax_code=tax_code,
            holder=holder,
        )
    except IdentityError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _audit(dep, "add", row)
    typer.echo(f"Đã đăng ký / registered #{row.id}: {row.role} {row.organisation} {row.holder} ({row.key_location})")


@identity_app.command("list")
def identity_list(org: Annotated[str | None, typer.Option(help="Only this issuer's identities")] = None) -> None:
    """Every registered signing identity."""
    from registry.identities import list_identities

    for row in list_identities(_deployment().engine, org):
        state = f"retired {row.retired_at:%Y-%m-%d}" if row.retired_at else "active"
        typer.echo(
            f"#{row.id:<4} {row.organisation:10} {row.role:17} {row.holder} | {row.key_location} | "
            f"{row.valid_from:%Y-%m-%d}→{row.valid_until:%Y-%m-%d} | {state} | {row.cert_sha256[:16]}"
        )


@identity_app.command("retire")
def identity_retire(identity_id: Annotated[int, typer.Argument(help="The identity's number (identity list)")]) -> None:
    """Stop an identity from signing from now on; documents it signed earlier stay valid."""
    from registry.identities import IdentityError, retire_identity

    dep = _deployment()
    try:
        row = retire_identity(dep.engine, identity_id)
    except IdentityError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _audit(dep, "retire", row)
    typer.echo(f"Đã ngừng / retired #{row.id}")
