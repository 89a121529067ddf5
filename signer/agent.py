"""`sealtrail agent`: runs on a signer's PC, signs the documents awaiting them with their own USB token.

The agent talks PKCS#11 to the token (``hsm_adapters.token``) and HTTP(S) to the SealTrail server with the signer's
bearer credential (``sealtrail signer register``). Before asking for the PIN it
  * checks that a certificate on the token is the one registered for this signer,
  * fetches the documents awaiting this signer and shows them (pupil, kind, school year, class),
  * downloads each prepared PDF/XML and recomputes the digests it will sign, so it only signs what belongs to a
    document the server says awaits this signer.
Then one PKCS#11 session signs the batch, document by document, posting each signature as soon as it is made.
A token pulled out mid-batch stops the run: what was signed stays signed, the rest stays pending, and running
the agent again picks up where it stopped.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

from errors import PermanentError
from hsm_adapters.base import KeyBackendError
from hsm_adapters.token import TokenCertificate, TokenGoneError, UsbToken

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_TOKEN_GONE, EXIT_REJECTED, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5


class AgentError(PermanentError):
    """Something the signer must fix before anything can be signed; the message says what."""

    def __init__(self, message: str, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Job:
    item: dict[str, Any]
    problem: str = ""


class ServerClient:
    """The signing API, scoped to one signer by the bearer credential."""

    def __init__(self, base_url: str, credential: str, *, cafile: Path | None = None, timeout: float = 120) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/signing",
            headers={"Authorization": f"Bearer {credential}"},
            verify=ssl.create_default_context(cafile=str(cafile)) if cafile else True,
            timeout=timeout,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AgentError(f"Không kết nối được máy chủ / cannot reach the server: {exc}") from None
        if response.status_code == 401:
            raise AgentError(f"Máy chủ từ chối mã xác thực / the server refused the credential: {_detail(response)}")
        return response

    def me(self) -> dict[str, Any]:
        response = self._call("GET", "/me")
        response.raise_for_status()
        return dict(response.json())

    def pending(self) -> list[dict[str, Any]]:
        response = self._call("GET", "/pending")
        response.raise_for_status()
        return list(response.json()["items"])

    def prepared(self, task_id: str, ext: str) -> bytes:
        response = self._call("GET", f"/{task_id}/prepared.{ext}")
        if response.status_code != 200:
            raise AgentError(_detail(response), EXIT_PARTIAL)
        return response.content

    def post(self, task_id: str, body: dict[str, str]) -> tuple[int, str]:
        response = self._call("POST", f"/{task_id}/signature", json=body)
        if response.status_code == 200:
            return 200, str(response.json()["state"])
        return response.status_code, _detail(response)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:300]


def check_item(item: dict[str, Any], pdf: bytes, xml: bytes, registered_sha256: str) -> str:
    """'' when the digests to sign really are this document's; otherwise why not (then it is not signed)."""
    from signer.deferred import byte_range_digest, pdf_message_digest, signed_info_digest
    from signer.xades import signed_data

    try:
        attrs = base64.b64decode(item["signed_attrs"])
        if hashlib.sha256(attrs).hexdigest() != item["pdf_to_sign"]:
            return "mã băm PDF không khớp thuộc tính ký / the PDF digest does not match its signed attributes"
        if pdf_message_digest(attrs) != byte_range_digest(pdf, item["region_start"], item["region_end"]):
            return "mã băm PDF không thuộc văn bản này / the PDF digest is not this document's"
        if signed_info_digest(xml, item["role"]).hex() != item["xml_to_sign"]:
            return "mã băm XML không thuộc văn bản này / the XML digest is not this document's"
        if item["summary"]["pupil"] != holder_name(signed_data(xml)):
            return "tên học sinh không có trong dữ liệu / the pupil's name is not in the document data"
        if item["cert_sha256"] != registered_sha256:
            return "văn bản chờ một chứng thư khác / the document awaits another certificate"
    except (KeyError, ValueError, TypeError) as exc:
        return f"dữ liệu chờ ký không hợp lệ / malformed pending item: {exc}"
    return ""


def holder_name(canonical_xml: bytes) -> str:
    """The pupil's full name as written in the document data itself (family, middle and given name)."""
    from schemas.xml import parse_xml_securely

    root = parse_xml_securely(canonical_xml)
    holder = next((e for e in root.iter() if etree.QName(e).localname == "holder"), None)
    if holder is None:
        return ""
    parts = {etree.QName(e).localname: (e.text or "").strip() for e in holder}
    return " ".join(p for p in (parts.get("family_name"), parts.get("middle_name"), parts.get("given_name")) if p)


def _row(i: int, item: dict[str, Any]) -> str:
    s = item["summary"]
    return (
        f"  {i:>2}. {s['pupil']:<28} {s['kind_title']:<9} năm học {s['school_year'] or '-':<10} "
        f"lớp {s['class_name'] or '-':<5} {s['doc_id']}"
    )


def run_agent(
    *,
    server: ServerClient,
    token: UsbToken,
    read_pin: Callable[[], str],
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> int:
    """One agent run; returns the process exit code."""
    me = server.me()
    echo(f"Người ký / signer: {me['display_name']} — {me['role']} — trường {me['school_code']}")
    mine = next((c for c in token.certificates() if c.sha256 == me["cert_sha256"]), None)
    if mine is None:
        raise AgentError(
            "Token này không chứa chứng thư số đã đăng ký cho bạn (SHA-256 "
            f"{me['cert_sha256'][:16]}…). / This token does not hold the certificate registered for you. "
            "Cắm đúng token hoặc đăng ký lại chứng thư. / Plug in the right token or register the certificate again."
        )
    echo(f"Chứng thư trên token / certificate on the token: {mine.subject}")
    todo = _review(server, me, echo, confirm)
    if isinstance(todo, int):
        return todo
    jobs, skipped = todo
    return _sign_batch(server, token, mine, jobs, read_pin(), echo, skipped=skipped)


def _review(
    server: ServerClient, me: dict[str, Any], echo: Callable[[str], None], confirm: Callable[[str], bool]
) -> tuple[list[Job], int] | int:
    """Fetch, check and show what awaits this signer; the jobs to sign, or an exit code when there are none."""
    items = server.pending()
    if not items:
        echo("Không có văn bản nào chờ bạn ký. / Nothing is awaiting your signature.")
        return EXIT_OK
    jobs = []
    for item in items:
        problem = check_item(
            item, server.prepared(item["task_id"], "pdf"), server.prepared(item["task_id"], "xml"), me["cert_sha256"]
        )
        jobs.append(Job(item, problem))
    echo(f"{len(items)} văn bản chờ bạn ký / documents awaiting your signature:")
    for i, job in enumerate(jobs, 1):
        echo(_row(i, job.item) + (f"\n      BỎ QUA / SKIPPED: {job.problem}" if job.problem else ""))
    todo = [j for j in jobs if not j.problem]
    if not todo:
        echo("Không có văn bản nào ký được. / Nothing can be signed.")
        return EXIT_PARTIAL
    if not confirm(f"Ký {len(todo)} văn bản này? / Sign these {len(todo)} documents?"):
        echo("Đã huỷ, chưa ký gì. / Cancelled, nothing signed.")
        return EXIT_OK
    return todo, len(jobs) - len(todo)


def _sign_batch(
    server: ServerClient,
    token: UsbToken,
    cert: TokenCertificate,
    todo: list[Job],
    pin: str,
    echo: Callable[[str], None],
    *,
    skipped: int,
) -> int:
    done, failed = 0, skipped
    try:
        with token.session(pin, cert) as signer:
            del pin
            for i, job in enumerate(todo, 1):
                item = job.item
                pdf_sig = signer.sign_digest(bytes.fromhex(item["pdf_to_sign"]))
                xml_sig = signer.sign_digest(bytes.fromhex(item["xml_to_sign"]))
                status, text = server.post(
                    item["task_id"],
                    {
                        "pdf_to_sign": item["pdf_to_sign"],
                        "xml_to_sign": item["xml_to_sign"],
                        "pdf_signature": base64.b64encode(pdf_sig).decode(),
                        "xml_signature": base64.b64encode(xml_sig).decode(),
                    },
                )
                label = f"[{i}/{len(todo)}] {item['summary']['doc_id']} {item['summary']['pupil']}"
                if status == 200:
                    done += 1
                    echo(f"{label}: đã ký / signed ({text})")
                else:
                    failed += 1
                    echo(f"{label}: máy chủ từ chối / refused by the server ({status}): {text}")
    except TokenGoneError as exc:
        left = len(todo) - done - (failed - skipped)
        echo(f"LỖI / ERROR: {exc}")
        echo(
            f"Đã ký {done}, còn {left} văn bản vẫn chờ ký. Cắm lại token và chạy lại `sealtrail agent`. / "
            f"{done} signed, {left} still pending. Plug the token back in and run `sealtrail agent` again."
        )
        return EXIT_TOKEN_GONE
    except KeyBackendError as exc:
        raise AgentError(str(exc)) from None
    echo(f"Xong: đã ký {done}/{len(todo) + skipped}. / Done: {done} of {len(todo) + skipped} signed.")
    return EXIT_OK if failed == 0 else EXIT_PARTIAL


def prompt_pin() -> str:
    """The PIN from the terminal, without echo."""
    pin = getpass.getpass("Mã PIN của token / token PIN: ")
    if not pin:
        raise AgentError("Chưa nhập mã PIN / no PIN entered")
    return pin


def list_certificates(token: UsbToken, echo: Callable[[str], None]) -> None:
    for c in token.certificates():
        echo(f"  {c.label:<20} {c.subject}\n      SHA-256 {c.sha256}")


def run_remote(
    *,
    server: ServerClient,
    csc: Any,
    credential_id: str,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> int:
    """Sign what awaits this signer through a CSC remote-signing service, approved once on the phone."""
    from hsm_adapters.remote import WAITING_TEXT, ApprovalRejected, ApprovalTimeout

    me = server.me()
    echo(f"Người ký / signer: {me['display_name']} — {me['role']} — trường {me['school_code']}")
    credential = csc.info(credential_id)
    if credential.cert_sha256 != me["cert_sha256"]:
        raise AgentError(
            f"Chứng thư của tài khoản ký số từ xa ({credential_id}) không phải chứng thư đã đăng ký cho bạn. / "
            f"The remote credential's certificate ({credential_id}) is not the one registered for you."
        )
    echo(f"Chứng thư ký số từ xa / remote certificate: {credential.certificate.subject.human_friendly}")
    todo = _review(server, me, echo, confirm)
    if isinstance(todo, int):
        return todo
    jobs, skipped = todo
    digests = [bytes.fromhex(j.item[k]) for j in jobs for k in ("pdf_to_sign", "xml_to_sign")]
    echo(f"{WAITING_TEXT} ({len(jobs)} văn bản / documents, {len(digests)} chữ ký / signatures)…")
    shown: set[int] = set()

    def waiting(seconds: float) -> None:
        if int(seconds) // 10 not in shown:
            shown.add(int(seconds) // 10)
            echo(f"  … {int(seconds)} s — {WAITING_TEXT}")

    try:
        signatures = csc.sign_digests(credential, digests, on_wait=waiting)
    except (ApprovalRejected, ApprovalTimeout) as exc:
        echo(f"LỖI / ERROR: {exc}")
        return EXIT_REJECTED if isinstance(exc, ApprovalRejected) else EXIT_TIMEOUT
    echo("Đã xác nhận trên điện thoại / approved on the phone.")
    done, failed = 0, skipped
    for i, job in enumerate(jobs):
        item = job.item
        status, text = server.post(
            item["task_id"],
            {
                "pdf_to_sign": item["pdf_to_sign"],
                "xml_to_sign": item["xml_to_sign"],
                "pdf_signature": base64.b64encode(signatures[2 * i]).decode(),
                "xml_signature": base64.b64encode(signatures[2 * i + 1]).decode(),
            },
        )
        label = f"[{i + 1}/{len(jobs)}] {item['summary']['doc_id']} {item['summary']['pupil']}"
        if status == 200:
            done += 1
            echo(f"{label}: đã ký / signed ({text})")
        else:
            failed += 1
            echo(f"{label}: máy chủ từ chối / refused by the server ({status}): {text}")
    echo(f"Xong: đã ký {done}/{len(jobs) + skipped}. / Done: {done} of {len(jobs) + skipped} signed.")
    return EXIT_OK if failed == 0 else EXIT_PARTIAL
