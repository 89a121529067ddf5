"""The trust bundle for offline checking, and the offline checks that use it.

``sealtrail export-trust DIR`` writes everything a verifier with no network needs::

    root.pem            trusted root certificate(s): a signature must chain to one of these
    issuing-ca.pem      intermediate CA certificates (helpers for path building, never anchors)
    qr-seal-key.pem     the issuers' public keys for the QR codes' offline seals
    log.vkey            the public log's verifier key (C2SP signed-note format)
    checkpoint          the log's latest signed checkpoint, for inclusion proofs
    verify-hosts.txt    the issuers' registered verification host names, one per line
    status/S/Y/revocation.jwt  each school's signed Bitstring Status List per school year (credential status)
    status/index.json   each issued file's SHA-256 (and document id) → its place in a status list
    revocation/NN.crl|.ocsp  CRLs and OCSP answers for the signers' certificates as of export (for signatures
                        that carry no revocation data of their own)
    status-manifest.jwt the signed "status as of" time and the SHA-256 of every file under status/, revocation/

``sealtrail demo --out DIR`` writes the same bundle under ``DIR/trust``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import pem, x509
from cryptography.hazmat.primitives import serialization

from errors import PermanentError
from verifier.qrseal import PublicKey, QrCheck, SealError, check_qr, load_public_keys

ROOTS = "root.pem"
INTERMEDIATES = "issuing-ca.pem"
QR_KEYS = "qr-seal-key.pem"
LOG_VKEY = "log.vkey"
CHECKPOINT = "checkpoint"
HOSTS = "verify-hosts.txt"


class TrustBundleError(PermanentError):
    """The trust bundle is missing or damaged; the message names the file."""


def _certs(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if not pem.detect(data):
        return [x509.Certificate.load(data)]
    return [x509.Certificate.load(der) for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]


@dataclass
class TrustBundle:
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)
    qr_keys: dict[bytes, PublicKey] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    log_vkey: str | None = None
    checkpoint: bytes | None = None

    @classmethod
    def load(cls, directory: Path) -> TrustBundle:
        if not directory.is_dir():
            raise TrustBundleError(
                f"{directory} is not a trust bundle directory (make one with sealtrail export-trust)"
            )
        try:
            roots = _certs(directory / ROOTS)
        except (OSError, ValueError) as exc:
            raise TrustBundleError(f"Cannot read the trusted roots {directory / ROOTS}: {exc}") from exc
        if not roots:
            raise TrustBundleError(f"{directory / ROOTS} holds no certificate")
        bundle = cls(roots)
        try:
            if (directory / INTERMEDIATES).exists():
                bundle.intermediates = _certs(directory / INTERMEDIATES)
            if (directory / QR_KEYS).exists():
                bundle.qr_keys = load_public_keys((directory / QR_KEYS).read_bytes())
            if (directory / HOSTS).exists():
                lines = (directory / HOSTS).read_text(encoding="utf-8").splitlines()
                bundle.hosts = [h.strip() for h in lines if h.strip() and not h.startswith("#")]
            if (directory / LOG_VKEY).exists():
                bundle.log_vkey = (directory / LOG_VKEY).read_text(encoding="utf-8").strip()
            if (directory / CHECKPOINT).exists():
                bundle.checkpoint = (directory / CHECKPOINT).read_bytes()
        except (OSError, ValueError) as exc:
            raise TrustBundleError(f"The trust bundle in {directory} is damaged: {exc}") from exc
        return bundle


def write_trust_bundle(
    directory: Path,
    *,
    roots: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    qr_public_keys: list[object],
    hosts: list[str],
    log_vkey: str,
    checkpoint: bytes | None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ROOTS).write_bytes(b"".join(pem.armor("CERTIFICATE", c.dump()) for c in roots))
    (directory / INTERMEDIATES).write_bytes(b"".join(pem.armor("CERTIFICATE", c.dump()) for c in intermediates))
    (directory / QR_KEYS).write_bytes(
        b"".join(
            k.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
            for k in qr_public_keys
        )
    )
    (directory / HOSTS).write_text(
        "# Registered verification hosts: a QR link to any other host is a warning sign\n" + "\n".join(hosts) + "\n",
        encoding="utf-8",
    )
    (directory / LOG_VKEY).write_text(log_vkey + "\n", encoding="utf-8")
    if checkpoint is not None:
        (directory / CHECKPOINT).write_bytes(checkpoint)


def read_qr(text_or_image: str) -> str:
    """The QR's text: the argument itself, or the one QR code zbarimg finds in an image file.

    The symbol's data is read whole from zbarimg's XML (a text with a line break is not cut at it), and an image
    with several different QR codes is refused: which one was checked must not be a guess."""
    path = Path(text_or_image)
    looks_like_file = path.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".pnm"}
    if not looks_like_file:
        return text_or_image
    if not path.is_file():
        raise SealError(f"Không tìm thấy ảnh {path} / the image {path} does not exist")
    try:
        result = subprocess.run(["zbarimg", "--xml", "-q", str(path)], capture_output=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise SealError("zbarimg is not installed (Debian package zbar-tools)") from exc
    codes = list(dict.fromkeys(_qr_symbols(result.stdout)))
    if not codes:
        raise SealError(f"Không đọc được mã QR trong ảnh / no QR code could be read in {path.name}")
    if len(codes) > 1:
        raise SealError(
            f"Ảnh {path.name} có {len(codes)} mã QR khác nhau; hãy cắt ảnh để chỉ còn một mã / the image holds "
            f"{len(codes)} different QR codes; crop it to the one to check"
        )
    return codes[0]


def _qr_symbols(xml: bytes) -> list[str]:
    """The data of each QR-Code symbol in zbarimg's ``--xml`` output (base64-encoded data decoded)."""
    import base64

    from lxml import etree

    if not xml.strip():
        return []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(xml, parser)
    out = []
    for symbol in root.iter("{*}symbol"):
        data = symbol.find("{*}data")
        if symbol.get("type") != "QR-Code" or data is None:
            continue
        text = data.text or ""
        out.append(base64.b64decode(text).decode("utf-8", "replace") if data.get("format") == "base64" else text)
    return out


def verify_qr(text: str, bundle: TrustBundle) -> QrCheck:
    if not bundle.qr_keys:
        raise SealError("The trust bundle holds no QR seal keys (qr-seal-key.pem)")
    return check_qr(text, bundle.qr_keys, bundle.hosts)
