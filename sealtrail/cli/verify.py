"""`sealtrail verify`, `verify-qr`, `export-trust`: checking documents, online or with a trust bundle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment, _quiet_libraries

app = typer.Typer()


MaxStatusAge = Annotated[
    float,
    typer.Option(
        "--max-status-age",
        envvar="SEALTRAIL_STATUS_MAX_AGE_DAYS",
        help="Warn when the trust bundle's signed status is older than this many days",
    ),
]
"""``verify`` and ``verify-qr``: how old a trust bundle's signed status may be before a warning."""


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A signed PDF or signed XML")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the detailed report as JSON")] = False,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            help="A trust bundle directory (from export-trust) or PEM file(s) of trusted roots "
            "(default: this installation's)"
        ),
    ] = None,
    max_status_age: MaxStatusAge = 7.0,
) -> None:
    """Check a signed PDF or signed XML offline. Exit status 0 only when it is valid and trusted."""
    _quiet_libraries()
    try:
        data = file.read_bytes()
    except OSError as exc:
        typer.echo(f"Không đọc được tệp / cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    from verifier.credentials import looks_like_credential

    if looks_like_credential(file, data):
        _verify_credential(data, trust, as_json)
    report = _file_report(data, trust)
    bundles = [p for p in trust or [] if p.is_dir()]
    status_lines: list[str] = []
    if len(bundles) == 1:  # the bundle's signed "status as of", and a warning when it is old
        from verifier.bundlestatus import status_lines_for

        status_lines = status_lines_for(bundles[0], max_status_age)
    if as_json:
        out = report.to_json()
        if status_lines:
            out["status_bundle"] = status_lines
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        from verifier.status import VERDICT_TEXT

        vi, en = VERDICT_TEXT[report.verdict]
        typer.echo(f"{vi} / {en}")
        for sig in report.signatures:
            when = sig.timestamp_time or sig.signing_time
            where = getattr(sig, "field_name", None) or getattr(sig, "role", "")
            stamp = when.isoformat() if hasattr(when, "isoformat") else (when or "?")
            typer.echo(f"  - {sig.signer} ({where}): {sig.indication}, {stamp}")
        for reason in report.reasons:
            typer.echo(f"  ! {reason.vi} / {reason.en}")
        for line in status_lines:
            typer.echo(line)
    raise typer.Exit(0 if report.verdict == "valid" else 1)


def _file_report(data: bytes, trust: list[Path] | None):  # type: ignore[no-untyped-def]
    """A signed PDF's or XML's report, as `verify` and `verify-qr --document` give it: its signatures against
    ``trust`` (roots or a bundle; default: this installation's), then a bundle's status lists, then, for a
    translation, its original's status."""
    from verifier.pdf import PdfVerifier
    from verifier.xml import XmlVerifier, looks_like_xml

    is_xml = looks_like_xml(data)
    bundles = [p for p in trust or [] if p.is_dir()]
    if trust:
        from verifier.revocation import CRL_DIR, LocalRevocation

        roots, helpers = _trust_certs(trust)
        verifier: PdfVerifier | XmlVerifier = XmlVerifier(roots, helpers) if is_xml else PdfVerifier(roots, helpers)
        if len(bundles) == 1:  # the bundle's CRLs/OCSP prove the signers' status where a signature carries none
            verifier.local_revocation = LocalRevocation.from_directory(bundles[0] / CRL_DIR)
    else:
        from sealtrail.deployment import DeploymentError
        from verifier.trustlist import TrustListError

        dep = _deployment()
        try:
            verifier = dep.xml_verifier if is_xml else dep.pdf_verifier
        except (DeploymentError, TrustListError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    report = verifier.verify(data)
    translation = _translation_in(data, report)  # read before a status check may lower the verdict
    if len(bundles) == 1:  # a trust bundle carries the status lists: a revoked document is not valid offline
        from verifier.credentials import apply_offline_status

        report = apply_offline_status(bundles[0], data, report)
    elif not trust:  # on an installation: its register says whether the document was revoked or superseded
        from verifier.checking import apply_register

        report = apply_register(dep, data, report, "xml" if is_xml else "pdf")
    if translation is not None:  # a translation's verdict also follows its original's status
        from verifier.translation import follow_original_offline

        bundle = bundles[0] if len(bundles) == 1 else None
        report = follow_original_offline(report, translation, None if trust else _deployment().engine, bundle)
    return report


def _translation_in(data: bytes, report):  # type: ignore[no-untyped-def]
    """The translation data a correctly signed file carries (None for other documents or a failed signature)."""
    from verifier.translation import embedded_translation

    return embedded_translation(data) if report.verdict != "invalid" else None


def _verify_credential(data: bytes, trust: list[Path] | None, as_json: bool) -> None:
    """`verify FILE.jwt|.json`: a W3C Verifiable Credential (signature, status, ledger link); exits."""
    from verifier.credentials import credential_token, offline_verifier, online_verifier
    from verifier.offline import TrustBundleError
    from verifier.status import VERDICT_TEXT

    bundles = [p for p in trust or [] if p.is_dir()]
    if trust and len(bundles) != 1:
        typer.echo(
            "Chứng chỉ số cần đúng một thư mục tin cậy / a credential needs one trust bundle directory", err=True
        )
        raise typer.Exit(2)
    try:
        verifier = offline_verifier(bundles[0]) if bundles else online_verifier(_deployment())
    except TrustBundleError as exc:
        typer.echo(f"Không đọc được danh sách tin cậy / cannot read the trust bundle: {exc}", err=True)
        raise typer.Exit(2) from None
    report = verifier.verify(credential_token(data))
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        vi, en = VERDICT_TEXT[report.verdict]
        typer.echo(f"{vi} / {en}")
        typer.echo(f"  {', '.join(report.types)} — {report.document_id or '?'} ({report.issuer or '?'})")
        typer.echo(f"  chữ ký / signature: {report.signer or '?'}; trạng thái / status: {report.status}; "
                   f"sổ cái / ledger: {report.ledger}")  # fmt: skip
        if report.status_list_valid_from:
            typer.echo(f"  danh sách trạng thái lập lúc / status list as of {report.status_list_valid_from}")
        for reason in report.reasons:
            typer.echo(f"  ! {reason.vi} / {reason.en}")
    raise typer.Exit(0 if report.verdict == "valid" else 1)


def _trust_certs(paths: list[Path]):  # type: ignore[no-untyped-def]
    from sealtrail.deployment import load_pem_certs
    from verifier.offline import TrustBundle, TrustBundleError

    roots, helpers = [], []
    for path in paths:
        try:
            if path.is_dir():
                bundle = TrustBundle.load(path)
                roots += bundle.roots
                helpers += bundle.intermediates
            else:
                roots += load_pem_certs(path)
        except (OSError, ValueError, TrustBundleError) as exc:
            typer.echo(f"Không đọc được danh sách tin cậy / cannot read the trust list {path}: {exc}", err=True)
            raise typer.Exit(2) from None
    return roots, helpers


@app.command("export-trust")
def export_trust_command(
    directory: Annotated[Path, typer.Argument(help="Where to write the trust bundle")],
) -> None:
    """Write the trust bundle offline verifiers need: roots, QR seal keys, log key and checkpoint, hosts."""
    _deployment().export_trust(directory)
    typer.echo(f"Trust bundle written to {directory} (give it to verifiers: sealtrail verify --trust {directory})")


@app.command("verify-qr")
def verify_qr_command(
    qr: Annotated[str, typer.Argument(help="The QR code's text, or an image file (PNG/JPEG) showing it")],
    trust: Annotated[
        Path | None, typer.Option(help="Trust bundle directory (default: this installation's own keys and hosts)")
    ] = None,
    document: Annotated[
        Path | None,
        typer.Option(
            help="The PDF (or signed XML) the QR was printed on: its signatures are checked as `verify` checks them "
            "(same trust), and the seal must vouch for this very document"
        ),
    ] = None,
    max_status_age: MaxStatusAge = 7.0,
) -> None:
    """Check a QR code offline: its seal against the issuers' keys, its link against the registered hosts, and
    the document's status (the trust bundle's signed status lists, or this installation's register)."""
    from verifier.offline import TrustBundle, TrustBundleError, read_qr, verify_qr
    from verifier.qrseal import SealError

    _quiet_libraries()
    try:
        if trust is not None:
            bundle = TrustBundle.load(trust)
        else:
            dep = _deployment()
            from schemas.qrseal import key_id

            public = dep.qr_public_key
            bundle = TrustBundle(roots=dep.trust_roots, qr_keys={key_id(public): public}, hosts=dep.verify_hosts)
        check = verify_qr(read_qr(qr), bundle)
    except TrustBundleError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except SealError as exc:
        typer.echo(f"KHÔNG HỢP LỆ / NOT VALID: {exc}")
        raise typer.Exit(1) from None
    for warning in check.warnings:
        typer.echo(warning)
    for note in check.notes:
        typer.echo(note)
    claims = check.claims
    if claims is None:
        raise typer.Exit(1)
    typer.echo("Dấu niêm phong hợp lệ / the seal is genuine:")
    typer.echo(f"  {claims.kind} {claims.doc_id}, issued {claims.issue_date.isoformat()} by {claims.issuer}")
    typer.echo(f"  holder: {claims.holder_name}, born {claims.birth_date.isoformat()}")
    if check.parsed.url:
        typer.echo(f"  full check (status, revocation): {check.parsed.url}")
    if trust is not None:  # revoked or superseded → not valid, whatever the seal says
        from verifier.credentials import bundle_status_lines

        standing, lines = bundle_status_lines(trust, claims.doc_id, max_status_age)
    else:
        from verifier.checking import register_status_lines

        standing, lines = register_status_lines(dep, claims.doc_id)
    for line in lines:
        typer.echo(line)
    if not standing:
        raise typer.Exit(1)
    if document is not None and not _document_carries_qr(claims, document, trust):
        raise typer.Exit(1)
    raise typer.Exit(1 if check.warnings else 0)


def _document_carries_qr(claims: object, document: Path, trust: Path | None) -> bool:
    """``document``'s signatures are valid (checked as `verify` checks them, with the same trust) and the seal
    vouches for it: the seal's XML hash is the hash of the XML the signed file carries. Prints why not."""

    from verifier.qrseal import OTHER_DOCUMENT, SealClaims, seal_matches_document
    from verifier.status import VERDICT_TEXT

    assert isinstance(claims, SealClaims)
    try:
        data = document.read_bytes()
    except OSError as exc:
        typer.echo(f"Không đọc được tệp / cannot read {document}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    report = _file_report(data, [trust] if trust is not None else None)
    if report.verdict != "valid":
        vi, en = VERDICT_TEXT[report.verdict]
        typer.echo(f"Văn bản {document.name}: {vi} / the document {document.name}: {en}")
        for reason in report.reasons:
            typer.echo(f"  ! {reason.vi} / {reason.en}")
        return False
    carried = getattr(report, "attachments", None)
    if carried is not None:
        hashes = [a["sha256"] for a in carried]
    else:  # a signed XML: the canonical document its signatures cover
        hashes = [hashlib.sha256(report.data).hexdigest()] if report.data else []
    if not seal_matches_document(claims, hashes):
        typer.echo(f"CẢNH BÁO / WARNING [{OTHER_DOCUMENT[0]}]: {OTHER_DOCUMENT[1]} / {OTHER_DOCUMENT[2]}")
        return False
    typer.echo(
        f"Văn bản {document.name} hợp lệ và đúng là văn bản của mã QR / {document.name} is valid and is "
        "the document this QR belongs to"
    )
    return True
