"""Signing benchmark: one PAdES signature into the visible principal's field of a rendered 2-page transcript.

SealTrail: `PadesSigner` (one pyHanko signer per key, signing-certificate attribute encoded once, container
sized up front, stamp laid out once per signer and minute) through a soft key and through a PKCS#11 key on a
throwaway SoftHSM2 token. Baseline, measured in the same run: a plain pyHanko `sign_pdf` per document with the
key loaded per document (`SimpleSigner.load`, or a PKCS#11 session opened per document for `PKCS11Signer`),
pyHanko sizing the container with its dry-run signature. Both at PAdES B-B (no network), so the figure is the
signing machinery itself; B-LT adds the TSA and OCSP round trips measured by the batch benchmark.

Both sides are timed in this process's CPU time (time.process_time; SoftHSM2 runs inside the process too), so
other work on a shared machine does not count; the wall time is in the note.

Every signed output is checked with `pdfsig` ("Signature is Valid") before a figure is reported.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from asn1crypto import pem
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from bench.common import QUICK, Figure, growth_of, per_call, per_item, report
from bench.fixtures import rendered_transcript
from hsm_adapters.base import KeyBackend
from hsm_adapters.soft import SoftKeyBackend
from sealtrail.devpki import DevPki, create_dev_pki
from signer.pdf import PadesSigner, SignatureRequest

CPU = time.process_time  # this process's CPU time: steady on a shared machine (SoftHSM2 runs in-process too)
FIELD = "sig_principal"
ROLE = "principal"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "bench-token"  # noqa: S105 (a token label, not a password)


def check_with_pdfsig(pdf: bytes, what: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdfsig", f.name], capture_output=True, text=True, timeout=60).stdout
    if "Signature is Valid" not in out:
        raise RuntimeError(f"{what}: pdfsig does not accept the signature:\n{out}")


def _meta() -> signers.PdfSignatureMetadata:
    return signers.PdfSignatureMetadata(
        field_name=FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
    )


def _soft_baseline(pki: DevPki, tmp: Path, pdf: bytes) -> Callable[[], bytes]:
    cert = tmp / "principal.crt"
    cert.write_bytes(pki.cert(ROLE).dump())
    ca = tmp / "issuing-ca.crt"
    ca.write_bytes(pki.issuing_ca.dump())
    key = pki.directory / "keys" / f"{ROLE}.key.pem"

    def run() -> bytes:
        signer = signers.SimpleSigner.load(str(key), str(cert), ca_chain_files=(str(ca),))
        assert signer is not None
        return signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), _meta(), signer=signer).getvalue()

    return run


def _import_onto_token(conf: Path, pin_file: Path, key_pem: bytes, certs: list[bytes]) -> None:
    """Runs in a child process, so this process holds no login when the baseline starts (login is per process)."""
    from asn1crypto import x509

    from hsm_adapters.pkcs11 import Pkcs11Config, import_certificates, import_private_key

    os.environ["SOFTHSM2_CONF"] = str(conf)
    config = Pkcs11Config(module=Path(SOFTHSM_MODULE), pin_file=pin_file, token_label=TOKEN, key_label=ROLE)
    import_private_key(config, pem.unarmor(key_pem)[2])
    import_certificates(config, [x509.Certificate.load(c) for c in certs])


def _softhsm_token(pki: DevPki, tmp: Path) -> tuple[Path, str]:
    """A SoftHSM2 token in ``tmp`` holding the principal's key and certificate; returns (PIN file, PIN)."""
    tokens = tmp / "tokens"
    tokens.mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read once, when the module is first loaded in this process
    pin = hashlib.sha256(os.urandom(16)).hexdigest()[:8]
    pin_file = tmp / "user.pin"
    pin_file.write_text(pin + "\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key_pem = (pki.directory / "keys" / f"{ROLE}.key.pem").read_bytes()
    child = multiprocessing.get_context("spawn").Process(
        target=_import_onto_token, args=(conf, pin_file, key_pem, [pki.cert(ROLE).dump(), pki.issuing_ca.dump()])
    )
    child.start()
    child.join(120)
    if child.exitcode != 0:
        raise RuntimeError(f"importing the benchmark key onto SoftHSM2 failed (exit code {child.exitcode})")
    return pin_file, pin


def _pkcs11_baseline(pin: str, pdf: bytes) -> Callable[[], bytes]:
    from pyhanko.sign.pkcs11 import PKCS11Signer, TokenCriteria, open_pkcs11_session

    def run() -> bytes:
        session = open_pkcs11_session(SOFTHSM_MODULE, token_criteria=TokenCriteria(label=TOKEN), user_pin=pin)
        try:
            signer = PKCS11Signer(session, cert_label=ROLE, key_label=ROLE)
            return signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), _meta(), signer=signer).getvalue()
        finally:
            session.close()

    return run


def _figure(
    key: str,
    name: str,
    make_backend: Callable[[], KeyBackend],
    baseline: Callable[[], bytes],
    pdf: bytes,
    repeat: int,
    n: int,
) -> list[Figure]:
    # The baseline runs first: a PKCS#11 token is logged in per process, so its per-document sessions must all
    # be closed (logged out) before our backend logs in once and keeps its session.
    check_with_pdfsig(baseline(), f"baseline, {name}")
    base_t = per_call(baseline, repeat, clock=CPU)
    backend = make_backend()
    pades = PadesSigner(trust_roots=[], timestamp_urls=[], long_term=False)
    request = SignatureRequest(FIELD, "Nguyễn Văn Hiệu Trưởng", "Hiệu trưởng ký xác nhận")

    def ours() -> bytes:
        return pades.sign(pdf, backend, request)

    check_with_pdfsig(ours(), f"SealTrail, {name}")
    ours_t = per_call(ours, repeat * 3, clock=CPU)
    wall_t = per_call(ours, repeat)
    digest = hashlib.sha256(b"x").digest()
    raw_t = per_call(lambda: backend.sign_digest(digest, "sha256"), repeat * 5, clock=CPU)
    growth = growth_of({k: per_item(ours, n * k, clock=CPU) for k in (1, 10, 100)})
    overhead = max(0.0, ours_t - raw_t)
    return [
        Figure(
            key,
            f"sign 2-page transcript, {name}, B-B",
            ours_t * 1000,
            base_t * 1000,
            "ms",
            f"CPU time; raw key signature {raw_t * 1000:.2f} ms; wall {wall_t * 1000:.1f} ms at this load",
            growth=growth,
            growth_note=f"(batches of {n}/{10 * n}/{100 * n})",
        ),
        Figure(
            f"{key}.overhead",
            f"  signing overhead beyond the key, {name}",
            overhead * 1000,
            max(0.0, base_t - raw_t) * 1000,
            "ms",
            "target <= 10 ms on a soft key",
        ),
    ]


def main() -> list[Figure]:
    repeat, n = (4, 2) if QUICK else (15, 5)
    figures: list[Figure] = []
    pdf = rendered_transcript().pdf
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pki = create_dev_pki(tmp / "pki", "http://127.0.0.1:9")
        from hsm_adapters.pkcs11 import Pkcs11Config, Pkcs11KeyBackend

        pin_file, pin = _softhsm_token(pki, tmp)
        opened: list[Pkcs11KeyBackend] = []

        def hsm() -> KeyBackend:
            config = Pkcs11Config(module=Path(SOFTHSM_MODULE), pin_file=pin_file, token_label=TOKEN, key_label=ROLE)
            opened.append(Pkcs11KeyBackend(config))
            return opened[-1]

        try:
            figures += _figure("signing.pkcs11", "PKCS#11 (SoftHSM2)", hsm, _pkcs11_baseline(pin, pdf), pdf, repeat, n)
        finally:
            for backend in opened:
                backend.close()
        soft = SoftKeyBackend.from_pkcs12(pki.p12_path(ROLE))
        figures += _figure("signing.soft", "soft key", lambda: soft, _soft_baseline(pki, tmp, pdf), pdf, repeat, n)

    report("signing", figures)
    return figures


if __name__ == "__main__":
    main()
