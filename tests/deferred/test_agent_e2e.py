"""End to end: the real `sealtrail agent` CLI, a SoftHSM2 "USB token", and the app served by uvicorn on loopback.

Every output is checked by pdfsig (all signatures valid) and xmlsec1 (every XAdES signature), and the unplugged
token case leaves the signed documents signed and the rest pending until the agent runs again.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asn1crypto import pem
from sqlmodel import Session, select

import schemas
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.devpki import SIGNER_ROLES, DevPki
from sealtrail.web.signing import flow_for
from tests.conftest import SoftHsm, free_port
from tests.deferred.conftest import cert_pem, make_deployment
from tests.signing.test_pades import _pdfsig
from tests.signing.test_xades import _xmlsec
from workflow.signing import AWAITING, SigningTask, register_signer

SCREENS = Path(os.environ.get("SEALTRAIL_AGENT_SCREENS", "")) if os.environ.get("SEALTRAIL_AGENT_SCREENS") else None


class Served:
    def __init__(self, dep: Deployment, url: str, credential_file: Path, softhsm: SoftHsm) -> None:
        self.dep, self.url, self.credential_file, self.softhsm = dep, url, credential_file, softhsm
        self.cafile: Path | None = None

    def agent_args(self, *extra: str, token: str | None = None, pin_file: Path | None = None) -> list[str]:
        return [
            sys.executable, "-m", "sealtrail", "agent", "--server", self.url, "--token-label", token or "sealtrail-usb",
            "--credential-file", str(self.credential_file), "--pin-file", str(pin_file or self.softhsm.pin_file),
            "--yes", *(["--cafile", str(self.cafile)] if self.cafile else []), *extra,
        ]  # fmt: skip

    def run_agent(self, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.agent_args(*extra, **kw), capture_output=True, text=True, timeout=300)  # type: ignore[arg-type]

    def start(self, count: int, signer_id: str) -> list[str]:
        flow = flow_for(self.dep)
        docs = [schemas.parse_document(d) for d in schemas.load_sample("class_9a1")][:count]
        return [flow.start(doc, {"homeroom_teacher": signer_id}) for doc in docs]

    def records(self, ids: list[str]) -> list[DocumentRecord]:
        with Session(self.dep.engine) as session:
            rows = [session.get(DocumentRecord, i) for i in ids]
            for r in rows:
                session.expunge(r)
        return rows  # type: ignore[return-value]


def _screen(name: str, result: str) -> None:
    if SCREENS is not None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        (SCREENS / f"{name}.txt").write_text(result, encoding="utf-8")


def _tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 (the agent trusts it through --cafile)."""
    import datetime
    import ipaddress

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "sealtrail test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(cx509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(cx509.SubjectAlternativeName([cx509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path, dev_pki: DevPki, softhsm: SoftHsm) -> Iterator[Served]:
    """The app under uvicorn on a free loopback port (over HTTPS with a private CA when the param is True)."""
    tls = bool(getattr(request, "param", False))
    dep = make_deployment(tmp_path / "data", dev_pki)
    school = schemas.load_sample("class_9a1")[0]["school"]["code"]
    signer, credential = register_signer(
        dep.engine, school_code=school, role="homeroom_teacher", display_name="Cô Nguyễn Thị Lan",
        certificate_pem=cert_pem(dev_pki, "homeroom_teacher"),
    )  # fmt: skip
    credential_file = tmp_path / "credential"
    credential_file.write_text(credential)
    port = free_port()
    env = {**os.environ, "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dev_pki.base_url}
    log = (tmp_path / "server.log").open("w")
    tls_args: list[str] = []
    cafile = None
    if tls:
        cafile, key = _tls_files(tmp_path)
        tls_args = ["--ssl-certfile", str(cafile), "--ssl-keyfile", str(key)]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "sealtrail.web.app:app_factory", "--port", str(port),
         "--host", "127.0.0.1", *tls_args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if (
                    httpx.get(
                        f"{url}/healthz",
                        timeout=1,
                        verify=ssl.create_default_context(cafile=str(cafile)) if cafile else True,
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "server.log").read_text())
        s = Served(dep, url, credential_file, softhsm)
        s.cafile = cafile
        s.signer_id = signer.id  # type: ignore[attr-defined]
        yield s
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _check_outputs(dep: Deployment, records: list[DocumentRecord], dev_pki: DevPki, tmp_path: Path) -> None:
    trust = tmp_path / "root.pem", tmp_path / "ca.pem"
    trust[0].write_bytes(pem.armor("CERTIFICATE", dev_pki.root.dump()))
    trust[1].write_bytes(pem.armor("CERTIFICATE", dev_pki.issuing_ca.dump()))
    for record in records:
        assert record.status == "issued" and record.sha256_pdf and record.sha256_xml
        pdf = dep.settings.documents_dir / record.sha256_pdf[:2] / f"{record.sha256_pdf}.pdf"
        text = _pdfsig(pdf)
        assert text.count("Signature Validation: Signature is Valid.") == 3, text
        assert dep.pdf_verifier.verify(pdf.read_bytes()).verdict == "valid"
        xml = dep.settings.documents_dir / record.sha256_xml[:2] / f"{record.sha256_xml}.xml"
        for role in SIGNER_ROLES:
            result = _xmlsec(xml, f"sig-{role}", trust)
            assert result.returncode == 0 and "OK" in result.stderr, (role, result.stderr)


def test_a_batch_signed_with_the_usb_token_through_the_agent(served: Served, dev_pki: DevPki, tmp_path: Path) -> None:
    ids = served.start(3, served.signer_id)  # type: ignore[attr-defined]
    listed = subprocess.run([*served.agent_args("--list-certs")], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "SHA-256" in listed.stdout, listed.stderr
    _screen("list-certs", "$ sealtrail agent --list-certs …\n" + listed.stdout)

    result = served.run_agent()
    _screen("batch", "$ sealtrail agent --server … --token-label sealtrail-usb\n" + result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 văn bản chờ bạn ký" in result.stdout and "Xong: đã ký 3/3" in result.stdout
    for name in (schemas.parse_document(d).holder.full_name for d in schemas.load_sample("class_9a1")[:3]):
        assert name in result.stdout  # shown before signing
    _check_outputs(served.dep, served.records(ids), dev_pki, tmp_path)

    again = served.run_agent()
    assert again.returncode == 0 and "Không có văn bản nào chờ bạn ký" in again.stdout


def test_wrong_token_and_wrong_pin_sign_nothing(served: Served, softhsm: SoftHsm) -> None:
    ids = served.start(1, served.signer_id)  # type: ignore[attr-defined]
    wrong_token = served.run_agent(token="sealtrail-keygen")
    _screen("wrong-token", "$ sealtrail agent … --token-label sealtrail-keygen\n" + wrong_token.stderr)
    assert wrong_token.returncode == 2 and "không chứa chứng thư số đã đăng ký" in wrong_token.stderr
    wrong_pin = served.run_agent(pin_file=softhsm.wrong_pin_file)
    _screen("wrong-pin", "$ sealtrail agent … (wrong PIN)\n" + wrong_pin.stdout + wrong_pin.stderr)
    assert wrong_pin.returncode == 2 and "PIN" in wrong_pin.stderr and "không đúng" in wrong_pin.stderr
    assert "000000" not in wrong_pin.stdout + wrong_pin.stderr
    assert [r.status for r in served.records(ids)] == ["pending"]
    with Session(served.dep.engine) as session:
        task = session.exec(select(SigningTask).where(SigningTask.doc_id == ids[0])).first()
        assert task is not None and task.status == AWAITING


def test_token_pulled_mid_batch_keeps_the_signed_ones_and_resumes(
    served: Served, softhsm: SoftHsm, dev_pki: DevPki, tmp_path: Path
) -> None:
    ids = served.start(3, served.signer_id)  # type: ignore[attr-defined]
    token_dir = softhsm.token_dir("sealtrail-usb")
    parked = tmp_path / "unplugged"
    proc = subprocess.Popen(served.agent_args(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("[1/3]"):
                shutil.move(token_dir, parked)  # pull the token out
        proc.wait(timeout=120)
    finally:
        if parked.exists():
            shutil.move(parked, token_dir)
    output = "".join(lines)
    _screen("unplugged", "$ sealtrail agent …   (token pulled out after the first document)\n" + output)
    assert proc.returncode == 3, output
    assert "Cắm lại token và chạy lại" in output
    signed = output.count(": đã ký / signed")
    assert 1 <= signed < 3, output
    records = served.records(ids)
    assert sum(r.status == "issued" for r in records) == signed
    assert sum(r.status == "pending" for r in records) == 3 - signed

    resumed = served.run_agent()
    _screen("resumed", "$ sealtrail agent …   (token plugged back in)\n" + resumed.stdout + resumed.stderr)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{3 - signed} văn bản chờ bạn ký" in resumed.stdout
    _check_outputs(served.dep, served.records(ids), dev_pki, tmp_path)


@pytest.mark.parametrize("served", [True], indirect=True)
def test_the_agent_over_https_with_a_private_ca(served: Served, dev_pki: DevPki, tmp_path: Path) -> None:
    ids = served.start(1, served.signer_id)  # type: ignore[attr-defined]
    assert served.url.startswith("https://")
    cafile = served.cafile
    served.cafile = None  # without the private CA the agent refuses the server and signs nothing
    refused = served.run_agent()
    assert refused.returncode == 2 and "Không kết nối được máy chủ" in refused.stderr, refused.stderr
    assert [r.status for r in served.records(ids)] == ["pending"]
    served.cafile = cafile
    result = served.run_agent()
    assert result.returncode == 0, result.stdout + result.stderr
    _check_outputs(served.dep, served.records(ids), dev_pki, tmp_path)


def test_pin_prompt_does_not_echo_and_asks_only_after_the_list(served: Served, dev_pki: DevPki, tmp_path: Path) -> None:
    """In a real terminal (a pty): the list is shown, the signer confirms, then types the PIN, which never echoes."""
    import pty

    ids = served.start(1, served.signer_id)  # type: ignore[attr-defined]
    args = [a for a in served.agent_args() if a != "--yes"]
    cut = args.index("--pin-file")
    args = args[:cut] + args[cut + 2 :]  # no PIN file: the agent must prompt
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the agent
        os.execv(sys.executable, args)  # noqa: S606 - the agent itself, argv as a list
    seen = b""

    def read_until(marker: bytes, timeout: float = 180) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk

    read_until(b"Sign these 1 documents?")
    assert "Nguyễn Thị Thu Hằng".encode() in seen and b"PIN" not in seen  # the list before any PIN question
    os.write(fd, b"y\n")
    read_until("Mã PIN của token".encode())
    os.write(fd, served.softhsm.pin.encode() + b"\n")
    read_until("Xong: đã ký 1/1".encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert served.softhsm.pin.encode() not in seen  # typed, but never echoed
    _screen(
        "pin-prompt", "$ sealtrail agent --server … --token-label sealtrail-usb\n" + seen.decode().replace("\r", "")
    )
    _check_outputs(served.dep, served.records(ids), dev_pki, tmp_path)
