"""The `sealtrail` command line."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.accounts import register as _register_accounts
from sealtrail.cli.common import _deployment, _quiet_libraries
from sealtrail.cli.identity import register as _register_identity
from sealtrail.cli.install import register as _register_install
from sealtrail.cli.trust import register as _register_trust

app = typer.Typer(
    help="SealTrail: học bạ số và văn bằng số — issue, sign, log and verify Vietnamese school records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ledger_app = typer.Typer(help="The public append-only log: checkpoints, proofs, audits.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
hsm_app = typer.Typer(
    help="Keys in an HSM or token (PKCS#11): generate, request a certificate, store it. "
    "The PIN comes from SEALTRAIL_PKCS11_PIN_FILE, never from the command line.",
    no_args_is_help=True,
)
app.add_typer(hsm_app, name="hsm")
exchange_app = typer.Typer(
    help="Data-exchange records with school software and the Ministry's store (unofficial field names).",
    no_args_is_help=True,
)
app.add_typer(exchange_app, name="exchange")

batch_app = typer.Typer(help="Batch jobs: queue many documents at once, follow and cancel them.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")

_register_accounts(app)
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
    uvicorn.run(application, host=host, port=port, log_level="warning", log_config=None, access_log=False)


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
    max_status_age: Annotated[
        float,
        typer.Option(
            "--max-status-age",
            envvar="SEALTRAIL_STATUS_MAX_AGE_DAYS",
            help="Warn when the trust bundle's signed status is older than this many days",
        ),
    ] = 7.0,
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
        if len(bundles) == 1:  # the bundle's CRLs prove the signers' status where a signature carries none
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


api_key_app = typer.Typer(help="API keys for school software (one school per key).", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("create")
def api_key_create(
    school: Annotated[str, typer.Option(help="The school's code (mã trường)")],
    scope: Annotated[
        list[str] | None, typer.Option(help="documents:issue (default), workflow:read, workflow:edit; repeatable")
    ] = None,
) -> None:
    """Create an API key for one school's software. It is shown once; only its hash is stored."""
    from accounts.permissions import DEFAULT_API_SCOPES
    from sealtrail.web.api import create_api_key
    from sealtrail.web.deps import AccountsContext

    dep = _deployment()
    scopes = scope or list(DEFAULT_API_SCOPES)
    try:
        key = create_api_key(dep, school, scopes)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    AccountsContext(dep).record(None, "cli", "apikey.create", org=school, detail={"scopes": sorted(scopes)})
    typer.echo(f"API key for school {school}, scopes {', '.join(sorted(scopes))} (shown once, keep it secret):\n{key}")


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


@app.command("export-trust")
def export_trust_command(
    directory: Annotated[Path, typer.Argument(help="Where to write the trust bundle")],
) -> None:
    """Write the trust bundle offline verifiers need: roots, QR seal keys, log key and checkpoint, hosts."""
    _deployment().export_trust(directory)
    typer.echo(f"Trust bundle written to {directory} (give it to verifiers: sealtrail verify --trust {directory})")


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
    max_status_age: Annotated[
        float,
        typer.Option(
            "--max-status-age",
            envvar="SEALTRAIL_STATUS_MAX_AGE_DAYS",
            help="Warn when the trust bundle's signed status is older than this many days",
        ),
    ] = 7.0,
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
        from verifier.bundlestatus import bundle_status_lines

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
    import hashlib

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


@app.command()
def witness(
    origin: Annotated[str, typer.Option(help="The log's origin line, e.g. sealtrail.example.vn/log")],
    log_vkey: Annotated[str, typer.Option(help="The log's verifier key (as published at /log/key)")],
    state_dir: Annotated[Path, typer.Option(help="Where the witness keeps its key and what it has cosigned")] = Path(
        "witness-state"
    ),
    name: Annotated[str, typer.Option(help="The witness's key name")] = "witness.sealtrail.local",
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8900,
) -> None:
    """Run a witness: cosign (tlog-cosignature) each checkpoint that is consistent with the last one it saw."""
    import uvicorn
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from fastapi import FastAPI

    from ledger.note import NoteVerifier
    from ledger.web import make_witness_router
    from ledger.witness import Cosigner, Witness

    _quiet_libraries()
    state_dir.mkdir(parents=True, exist_ok=True)
    key_path = state_dir / "witness.key.pem"
    if not key_path.exists():
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    cosigner = Cosigner(name, key)
    w = Witness(cosigner, {origin: NoteVerifier.from_vkey(log_vkey)}, state_dir / "cosigned.json")
    application = FastAPI(title="SealTrail witness")
    application.include_router(make_witness_router(w))
    typer.echo(f"Witness {name} for {origin} on http://{host}:{port}/add-checkpoint")
    typer.echo(f"Its verifier key (give it to the log and to verifiers): {cosigner.verifier.vkey}")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    new: Annotated[bool, typer.Option("--new", help="Sign a fresh checkpoint of the log as it stands now")] = False,
) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint, signed-note format)."""
    from sealtrail.ledgerwiring import ledger_for, publish_checkpoint

    dep = _deployment()
    if new:
        note = publish_checkpoint(dep)
    else:
        ledger, _ = ledger_for(dep)
        with dep.engine.connect() as conn:
            latest = ledger.latest_checkpoint(conn)
        if latest is None:
            typer.echo("The log has no checkpoint yet; run with --new to sign one.", err=True)
            raise typer.Exit(1)
        note = latest
    sys.stdout.write(note.decode())


@ledger_app.command("prove")
def ledger_prove(
    document: Annotated[str | None, typer.Option(help="Document ID whose issue entry to prove")] = None,
    index: Annotated[int | None, typer.Option(help="Log entry index to prove")] = None,
    old_size: Annotated[
        int | None, typer.Option("--from-size", help="Print a consistency proof from this size")
    ] = None,
) -> None:
    """Print a .tlog-proof (C2SP tlog-proof) for an entry, or a consistency proof to the latest checkpoint."""
    import base64

    from sqlmodel import Session

    from ledger.note import open_checkpoint
    from registry.records import DocumentRecord
    from sealtrail.ledgerwiring import ledger_for

    dep = _deployment()
    ledger, _ = ledger_for(dep)
    if document is not None:
        with Session(dep.engine) as session:
            record = session.get(DocumentRecord, document)
        if record is None or record.leaf_index is None:
            typer.echo(f"No logged document {document}.", err=True)
            raise typer.Exit(1)
        index = record.leaf_index
    with dep.engine.connect() as conn:
        if old_size is not None:
            latest = ledger.latest_checkpoint(conn)
            if latest is None:
                typer.echo("The log has no checkpoint yet.", err=True)
                raise typer.Exit(1)
            checkpoint = open_checkpoint(latest, ledger.verifier, ledger.origin)
            for h in ledger.prove_consistency(conn, old_size, checkpoint.size):
                typer.echo(base64.b64encode(h).decode())
            return
        if index is None:
            typer.echo("Give --document, --index or --from-size.", err=True)
            raise typer.Exit(2)
        sys.stdout.write(ledger.tlog_proof(conn, index).decode())


@ledger_app.command("audit")
def ledger_audit() -> None:
    """Rebuild the tree from the entries; check nodes, checkpoints, the documents table and the stored files."""
    from sealtrail.ledgerwiring import audit_deployment

    problems = audit_deployment(_deployment())
    if problems:
        typer.echo("Sổ cái có vấn đề / the ledger audit found problems:", err=True)
        for p in problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(1)
    typer.echo("Sổ cái nhất quán / the ledger audit passed: entries, tree, checkpoints, documents and files agree.")


def _key_errors():  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    from hsm_adapters.base import KeyBackendError
    from sealtrail.deployment import DeploymentError

    @contextmanager
    def guard():  # type: ignore[no-untyped-def]
        try:
            yield
        except (KeyBackendError, DeploymentError) as exc:
            typer.echo(f"Lỗi khoá ký / key error: {exc}", err=True)
            raise typer.Exit(1) from None

    return guard()


def _subject(text: str) -> dict[str, str]:
    names = {"CN": "common_name", "O": "organization_name", "OU": "organizational_unit_name", "C": "country_name",
             "L": "locality_name", "ST": "state_or_province_name", "UID": "user_id", "E": "email_address"}  # fmt: skip
    subject: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().upper() not in names or not value.strip():
            raise typer.BadParameter(f"cannot read {part!r}; write it like CN=Trường THCS Nguyễn Du,O=...,C=VN")
        subject[names[key.strip().upper()]] = value.strip()
    return subject


@hsm_app.command("keygen")
def hsm_keygen(
    label: Annotated[str, typer.Option(help="Label for the new key on the token")],
    subject: Annotated[str, typer.Option(help="Certificate subject, e.g. 'CN=Trường THCS Nguyễn Du,O=...,C=VN'")],
    csr: Annotated[Path, typer.Option(help="Where to write the certificate request (PEM) for the CA")],
    key_type: Annotated[str, typer.Option("--type", help="rsa or ec")] = "rsa",
    bits: Annotated[int, typer.Option(help="RSA key size")] = 3072,
) -> None:
    """Generate a non-extractable key inside the token and write a certificate request for the CA."""
    from hsm_adapters.pkcs11 import generate_key, make_csr

    fields = _subject(subject)
    with _key_errors():
        config = _deployment().pkcs11_config(label)
        public = generate_key(config, key_type=key_type, bits=bits)
        csr.write_bytes(make_csr(config, public, fields))
    typer.echo(f"Key '{label}' generated on the token (it cannot be exported). Send {csr} to the CA.")
    _log_key_change("keygen", label, "")


@hsm_app.command("import-cert")
def hsm_import_cert(
    label: Annotated[str, typer.Option(help="Label of the key the certificate belongs to")],
    chain: Annotated[Path, typer.Argument(help="PEM file: the issued certificate first, then its CA chain")],
) -> None:
    """Store the certificate the CA issued (and its chain) on the token beside its key."""
    from hsm_adapters.pkcs11 import Pkcs11KeyBackend, import_certificates
    from sealtrail.deployment import load_pem_certs

    with _key_errors():
        config = _deployment().pkcs11_config(label)
        import_certificates(config, load_pem_certs(chain))
        backend = Pkcs11KeyBackend(config)
        backend.close()
    typer.echo(f"Certificate stored for '{label}': {backend.certificate.subject.human_friendly}")
    _log_key_change("import-cert", label, hashlib.sha256(backend.certificate.dump()).hexdigest())


def _log_key_change(action: str, label: str, cert_sha256: str) -> None:
    """A signing-key change is security-relevant: audited, and a ``key`` entry in the public log."""
    from sealtrail.web.deps import AccountsContext

    AccountsContext(_deployment()).record(
        None, "cli", "key.change", detail={"action": action, "label": label, "cert_sha256": cert_sha256}
    )


@hsm_app.command("load-dev-keys")
def hsm_load_dev_keys() -> None:
    """Development only: copy the dev PKI's signer keys and certificates onto the configured token."""
    from asn1crypto import pem

    from hsm_adapters.pkcs11 import import_certificates, import_private_key
    from sealtrail.devpki import SIGNER_ROLES

    with _key_errors():
        dep = _deployment()
        pki = dep.dev_pki
        for role in SIGNER_ROLES:
            label = dep.settings.pkcs11_keys.get(role, role)
            config = dep.pkcs11_config(label)
            import_private_key(config, pem.unarmor((pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
            import_certificates(config, [pki.cert(role), pki.issuing_ca])
            typer.echo(f"  {role:18} → key '{label}' (DEV ONLY)")


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


from sealtrail.cli.signing import register as _register_signing  # noqa: E402 - signers' own keys (#5)

_register_signing(app)


def main() -> None:  # pragma: no cover
    sys.exit(app())
