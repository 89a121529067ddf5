"""CLI for signers' own keys: `sealtrail signer register`, `sealtrail signing start|resume`, `sealtrail agent`,
`sealtrail remote-sign`. Wired into ``sealtrail.cli`` by :func:`register`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

signer_app = typer.Typer(
    help="Người ký dùng khoá riêng / signers with their own keys (token, remote).", no_args_is_help=True
)
signing_app = typer.Typer(help="Ký hai bước / two-step signing by registered signers.", no_args_is_help=True)


def _deployment():  # type: ignore[no-untyped-def]
    from sealtrail.cli.common import _deployment as dep

    return dep()


@signer_app.command("register")
def signer_register(
    school: Annotated[str, typer.Option(help="Mã trường / the school's code")],
    role: Annotated[str, typer.Option(help="homeroom_teacher or principal")],
    name: Annotated[str, typer.Option(help="Họ tên người ký / the signer's name")],
    cert: Annotated[Path, typer.Option(help="The signer's certificate (PEM or DER), as on their token")],
    credential_out: Annotated[
        Path | None, typer.Option(help="Write the credential to this file (mode 0600) instead of showing it")
    ] = None,
    person: Annotated[
        str | None, typer.Option(help="The staff account (username) this key belongs to: the workflow uses it")
    ] = None,
) -> None:
    """Register a signer and their certificate; prints the bearer credential once (only its hash is kept)."""
    from accounts.service import person_by_username
    from workflow.signing import SigningFlowError, register_signer

    dep = _deployment()
    account = person_by_username(dep.engine, person) if person else None
    if person and account is None:
        typer.echo(f"Lỗi / error: không có tài khoản {person} / no staff account {person}", err=True)
        raise typer.Exit(2)
    try:
        row, credential = register_signer(
            dep.engine, school_code=school, role=role, display_name=name, certificate_pem=cert.read_bytes(),
            person_id=account.id if account else None,
        )  # fmt: skip
    except (SigningFlowError, OSError) as exc:
        typer.echo(f"Lỗi / error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Đã đăng ký / registered {row.id}: {row.display_name} ({row.role}, {row.school_code})")
    typer.echo(f"Chứng thư / certificate SHA-256: {row.cert_sha256}")
    if credential_out is not None:
        fd = os.open(credential_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(credential + "\n")
        typer.echo(f"Mã xác thực đã ghi vào / credential written to {credential_out}")
    else:
        typer.echo(f"Mã xác thực (chỉ hiện một lần) / credential (shown once): {credential}")


@signing_app.command("start")
def signing_start(
    source: Annotated[str, typer.Argument(help="A JSON file of one document or a list, or a sample name")],
    signer: Annotated[list[str], typer.Option(help="role=SIGNER_ID, once per role signed with the signer's own key")],
) -> None:
    """Render documents and queue them for their signers (teacher, then principal, then the seal)."""
    import schemas
    from sealtrail.web.signing import flow_for
    from workflow.signing import SigningFlowError

    mapping = dict(item.split("=", 1) for item in signer)
    path = Path(source)
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else schemas.load_sample(source)
    items = data if isinstance(data, list) else [data]
    dep = _deployment()
    services = dep.start_dev_pki_services() if dep.settings.mode == "development" else None
    try:
        flow = flow_for(dep)
        for item in items:
            doc = schemas.parse_document(item)
            try:
                doc_id = flow.start(doc, mapping)
            except SigningFlowError as exc:
                typer.echo(f"Lỗi / error: {exc}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"{doc_id}\t{doc.holder.full_name}\t{flow.advance(doc_id)}")
    finally:
        if services:
            services.stop()


@signing_app.command("resume")
def signing_resume() -> None:
    """Carry every pending document as far as it can go now (after a restart or a failed server-side step)."""
    from jobs import batches as jobs
    from sealtrail.web.signing import flow_for

    dep = _deployment()
    for doc_id, state in flow_for(dep).resume_all().items():
        if state.issued:  # a principal's token signed it before the seal's step failed: its batch item finishes
            jobs.token_signed(dep, doc_id)
        typer.echo(f"{doc_id}\t{state}")


def _credential(credential_file: Path | None) -> str:
    if credential_file is not None:
        return credential_file.read_text(encoding="utf-8").strip()
    value = os.environ.get("SEALTRAIL_AGENT_CREDENTIAL", "").strip()
    if not value:
        typer.echo(
            "Thiếu mã xác thực người ký: dùng --credential-file hoặc SEALTRAIL_AGENT_CREDENTIAL. / "
            "No signer credential: use --credential-file or SEALTRAIL_AGENT_CREDENTIAL.",
            err=True,
        )
        raise typer.Exit(2)
    return value


def agent(
    server: Annotated[str, typer.Option(envvar="SEALTRAIL_AGENT_SERVER", help="The SealTrail server's base URL")],
    module: Annotated[
        Path, typer.Option(envvar="SEALTRAIL_AGENT_PKCS11_MODULE", help="The token vendor's PKCS#11 library")
    ] = Path("/usr/lib/softhsm/libsofthsm2.so"),
    token_label: Annotated[str | None, typer.Option(envvar="SEALTRAIL_AGENT_TOKEN_LABEL")] = None,
    token_serial: Annotated[str | None, typer.Option(envvar="SEALTRAIL_AGENT_TOKEN_SERIAL")] = None,
    credential_file: Annotated[Path | None, typer.Option(help="File holding the signer credential")] = None,
    pin_file: Annotated[Path | None, typer.Option(help="Read the PIN from this file (tests); default: prompt")] = None,
    cafile: Annotated[Path | None, typer.Option(help="CA bundle for an HTTPS server with a private CA")] = None,
    list_certs: Annotated[bool, typer.Option("--list-certs", help="Only list the token's certificates")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before signing (the list is still shown)")] = False,
) -> None:
    """Ký các văn bản đang chờ bạn bằng token USB / sign the documents awaiting you with your USB token."""
    from hsm_adapters.base import KeyBackendError
    from hsm_adapters.pkcs11 import read_pin
    from hsm_adapters.token import UsbToken
    from signer.agent import AgentError, ServerClient, list_certificates, prompt_pin, run_agent

    def echo(text: str) -> None:
        typer.echo(text)
        sys.stdout.flush()

    if not (token_label or token_serial):
        typer.echo("Chọn token: --token-label hoặc --token-serial / choose the token", err=True)
        raise typer.Exit(2)
    try:
        token = UsbToken(module, token_label=token_label, token_serial=token_serial)
        if list_certs:
            list_certificates(token, echo)
            return
        client = ServerClient(server, _credential(credential_file), cafile=cafile)
        code = run_agent(
            server=client,
            token=token,
            read_pin=(lambda: read_pin(pin_file)) if pin_file else prompt_pin,
            echo=echo,
            confirm=(lambda _q: True) if yes else (lambda q: typer.confirm(q, default=False)),
        )
    except (AgentError, KeyBackendError) as exc:
        typer.echo(f"LỖI / ERROR: {exc}", err=True)
        raise typer.Exit(getattr(exc, "code", 2)) from None
    raise typer.Exit(code)


def remote_sign(
    server: Annotated[str, typer.Option(envvar="SEALTRAIL_AGENT_SERVER", help="The SealTrail server's base URL")],
    csc_url: Annotated[str, typer.Option(envvar="SEALTRAIL_CSC_URL", help="The CSC service's base URL")],
    csc_token_file: Annotated[Path, typer.Option(help="File holding the service's OAuth2 access token")],
    credential_id: Annotated[str | None, typer.Option(help="The CSC credential (default: the only one)")] = None,
    csc_paths: Annotated[
        str | None, typer.Option(envvar="SEALTRAIL_CSC_PATHS", help='JSON path overrides, e.g. {"sign_hash": "…"}')
    ] = None,
    credential_file: Annotated[Path | None, typer.Option(help="File holding the SealTrail signer credential")] = None,
    approval_timeout: Annotated[float, typer.Option(help="Seconds to wait for approval on the phone")] = 300,
    poll_interval: Annotated[float, typer.Option(help="Seconds between status checks")] = 2,
    cafile: Annotated[Path | None, typer.Option(help="CA bundle for HTTPS with a private CA")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before signing (the list is still shown)")] = False,
) -> None:
    """Ký từ xa (SmartCA/MySign, CSC API), xác nhận trên điện thoại / remote signing approved on your phone."""
    from hsm_adapters.base import KeyBackendError
    from hsm_adapters.remote import CscClient, CscEndpoints
    from signer.agent import AgentError, ServerClient, run_remote

    def echo(text: str) -> None:
        typer.echo(text)
        sys.stdout.flush()

    try:
        endpoints = CscEndpoints(csc_url, **(json.loads(csc_paths) if csc_paths else {}))
        csc = CscClient(
            endpoints,
            csc_token_file.read_text(encoding="utf-8").strip(),
            approval_timeout=approval_timeout,
            poll_interval=poll_interval,
            cafile=cafile,
        )
        if credential_id is None:
            ids = csc.list_credentials()
            if len(ids) != 1:
                raise AgentError(f"Chọn --credential-id trong / choose --credential-id among: {', '.join(ids) or '-'}")
            credential_id = ids[0]
        code = run_remote(
            server=ServerClient(server, _credential(credential_file), cafile=cafile),
            csc=csc,
            credential_id=credential_id,
            echo=echo,
            confirm=(lambda _q: True) if yes else (lambda q: typer.confirm(q, default=False)),
        )
    except (AgentError, KeyBackendError, OSError, TypeError, ValueError) as exc:
        typer.echo(f"LỖI / ERROR: {exc}", err=True)
        raise typer.Exit(getattr(exc, "code", 2)) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(signer_app, name="signer")
    app.add_typer(signing_app, name="signing")
    app.command("agent")(agent)
    app.command("remote-sign")(remote_sign)
