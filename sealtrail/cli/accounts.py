"""`sealtrail org …`, `sealtrail user …` and `sealtrail student …`: the first organisations and administrators."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

org_app = typer.Typer(
    help="Organisations: Sở, Phòng, schools, universities, verifier organisations.", no_args_is_help=True
)
user_app = typer.Typer(help="People and their roles (staff sign in with password + TOTP).", no_args_is_help=True)
student_app = typer.Typer(help="Students: one-time sign-in codes for the student portal.", no_args_is_help=True)


def _context():  # type: ignore[no-untyped-def]
    from sealtrail.cli.common import _deployment
    from sealtrail.web.deps import AccountsContext

    return AccountsContext(_deployment())


def _who() -> str:
    return f"cli:{getpass.getuser()}"


def _fail(exc: Exception) -> None:
    typer.echo(str(exc), err=True)
    raise typer.Exit(1)


@org_app.command("create")
def org_create(
    code: Annotated[str, typer.Option(help="Mã đơn vị, e.g. the school code (mã trường)")],
    name: Annotated[str, typer.Option(help="Tên đơn vị")],
    kind: Annotated[str, typer.Option(help="department | district_office | school | university | verifier_org")],
    parent: Annotated[str | None, typer.Option(help="Code of the Sở/Phòng above it")] = None,
) -> None:
    """Create an organisation (optionally below a Sở or Phòng)."""
    from accounts.service import AccountError, create_org

    ctx = _context()
    try:
        org = create_org(ctx.engine, code, name, kind, parent)
    except AccountError as exc:
        _fail(exc)
        return
    ctx.record(None, _who(), "org.create", org=org.code, detail={"kind": kind, "parent": parent})
    typer.echo(f"Đã tạo đơn vị {org.code} ({org.kind}): {org.name}")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="Tên đăng nhập")],
    name: Annotated[str, typer.Option(help="Họ và tên")],
    org: Annotated[str | None, typer.Option(help="Organisation code to give a role in")] = None,
    role: Annotated[list[str] | None, typer.Option(help="Role(s) in that organisation (repeatable)")] = None,
    personal_id: Annotated[str | None, typer.Option(help="12-digit personal ID (students: ties documents)")] = None,
    student: Annotated[bool, typer.Option(help="A student: no password or TOTP, signs in with codes")] = False,
) -> None:
    """Create a person. Staff get a password (read from SEALTRAIL_NEW_PASSWORD or asked twice, never an option)
    and a TOTP secret, shown once as an otpauth:// URI for the authenticator app."""
    from accounts.service import AccountError, create_person, grant

    password = None
    if not student:
        password = os.environ.get("SEALTRAIL_NEW_PASSWORD") or typer.prompt(
            "Mật khẩu / password", hide_input=True, confirmation_prompt=True
        )
    ctx = _context()
    try:
        made = create_person(
            ctx.engine, username, name, password=password, personal_id=personal_id, with_totp=not student
        )
        for r in role or []:
            if org is None:
                raise AccountError("--role needs --org")
            grant(ctx.engine, username, org, r)
            ctx.record(None, _who(), "role.grant", org=org, target=username, detail={"role": r})
    except AccountError as exc:
        _fail(exc)
        return
    ctx.record(None, _who(), "user.create", org=org, target=username)
    typer.echo(f"Đã tạo người dùng {username}" + (f" với vai trò {', '.join(role)} ở {org}" if role else ""))
    if made.totp_uri:
        typer.echo("Thêm vào ứng dụng xác thực (chỉ hiện một lần) / add to the authenticator app (shown once):")
        typer.echo(made.totp_uri)


@user_app.command("grant")
def user_grant(
    username: Annotated[str, typer.Option()], org: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()]
) -> None:
    """Give a person a role in an organisation (logged, also in the public log)."""
    from accounts.service import AccountError, grant

    ctx = _context()
    try:
        grant(ctx.engine, username, org, role)
    except AccountError as exc:
        _fail(exc)
        return
    ctx.record(None, _who(), "role.grant", org=org, target=username, detail={"role": role})
    typer.echo(f"{username}: {role} ở {org}")


@user_app.command("link-sso")
def user_link_sso(
    username: Annotated[str, typer.Option()],
    subject: Annotated[str, typer.Option(help="The provider's 'sub' for this person")],
) -> None:
    """Link a single sign-on identity (SEALTRAIL_OIDC_ISSUER + subject) to a person, before they use SSO."""
    from accounts.service import person_by_username
    from accounts.sso import link_identity

    ctx = _context()
    issuer = (ctx.dep.settings.oidc_issuer or "").rstrip("/")
    person = person_by_username(ctx.engine, username)
    if not issuer or person is None or person.id is None:
        _fail(ValueError("Cần SEALTRAIL_OIDC_ISSUER và một người dùng có thật / set the issuer; name a real user"))
        return
    link_identity(ctx.engine, person.id, issuer, subject)
    ctx.record(None, _who(), "key.change", target=username, detail={"sso_subject": subject[:64]})
    typer.echo(f"{username} ↔ {issuer} {subject}")


@student_app.command("code")
def student_code(username: Annotated[str, typer.Option()], school: Annotated[str, typer.Option()]) -> None:
    """Make a one-time sign-in code for a student (give it to the student; it is shown once)."""
    from accounts.service import AccountError, issue_student_code

    ctx = _context()
    try:
        code = issue_student_code(ctx.engine, username, school)
    except AccountError as exc:
        _fail(exc)
        return
    ctx.record(None, _who(), "student.code", org=school, target=username)
    typer.echo(code)


def register(app: typer.Typer) -> None:
    app.add_typer(org_app, name="org")
    app.add_typer(user_app, name="user")
    app.add_typer(student_app, name="student")
