"""The trust list: which root CAs a signature may chain to, and which intermediates help build the path.

One list for every checker (the web service, ``sealtrail verify``, the offline bundle of ``export-trust`` and the
bulk checker): :func:`build_trust_list` assembles it from

- the development PKI's root and issuing CA (development mode only; the caller passes them),
- Vietnam's national roots and known issuing CAs shipped in ``verifier/trust/vietnam/`` (when the installation says
  so: ``SEALTRAIL_TRUST_NATIONAL=true``), and
- a folder of PEM/DER/P7B files (``SEALTRAIL_TRUST_DIR``): self-signed certificates are roots, the others are
  intermediates (path-building helpers, never anchors).

Look-alike roots are never trusted: a root that carries the name of a shipped national root, or of a root from an
earlier source, with another key is rejected (and reported), and so are two roots in the folder with one name and
different keys. Expired issuing CAs stay in the list: documents signed while they were valid still verify with a
timestamp and revocation data.

``import_certificate`` adds a file's certificate to the folder only when its SHA-256 matches the fingerprint the
operator copied from the CA's publication.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import pkcs7

from errors import PermanentError

SHIPPED_VIETNAM = Path(__file__).resolve().parent / "trust" / "vietnam"
CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der", ".p7b", ".p7c"}


class TrustListError(PermanentError):
    """A trust-list file cannot be read or imported; the message says which and why (Vietnamese / English)."""


@dataclass(frozen=True)
class Rejected:
    source: str
    subject: str
    sha256: str
    reason: str


@dataclass
class TrustList:
    roots: list[x509.Certificate] = field(default_factory=list)
    intermediates: list[x509.Certificate] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # sha256 hex → where it came from
    rejected: list[Rejected] = field(default_factory=list)

    def summary(self, now: datetime | None = None) -> dict[str, object]:
        """What /readyz and ``sealtrail trust list`` report: counts, fingerprints, earliest expiry."""
        now = now or datetime.now(UTC)
        roots = [_describe(c, self.sources.get(fingerprint(c), "")) for c in self.roots]
        inter = [_describe(c, self.sources.get(fingerprint(c), "")) for c in self.intermediates]
        valid_roots = [c for c in self.roots if _not_after(c) > now]
        earliest = min((_not_after(c) for c in valid_roots), default=None)
        return {
            "roots": len(self.roots),
            "intermediates": len(self.intermediates),
            "expired_intermediates": sum(1 for c in self.intermediates if _not_after(c) <= now),
            "earliest_root_expiry": earliest.isoformat() if earliest else None,
            "root_fingerprints": [r["sha256"] for r in roots],
            "certificates": roots + inter,
            "rejected": [r.__dict__ for r in self.rejected],
        }


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest().upper()


def normalise_fingerprint(text: str) -> str:
    """``AB:CD…``, ``ab cd…`` or ``abcd…`` → 64 upper-case hex digits; anything else is refused."""
    hexdigits = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", hexdigits):
        raise TrustListError(
            f"Dấu vân tay SHA-256 phải có 64 chữ số hex, không phải {text!r} / "
            f"a SHA-256 fingerprint is 64 hex digits, not {text!r}"
        )
    return hexdigits


def _not_after(cert: x509.Certificate) -> datetime:
    value: datetime = cert["tbs_certificate"]["validity"]["not_after"].native
    return value


def _describe(cert: x509.Certificate, source: str) -> dict[str, str]:
    validity = cert["tbs_certificate"]["validity"]
    return {
        "subject": cert.subject.human_friendly,
        "sha256": fingerprint(cert),
        "kind": "root" if is_self_signed(cert) else "intermediate",
        "not_before": validity["not_before"].native.isoformat(),
        "not_after": validity["not_after"].native.isoformat(),
        "source": source,
    }


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature (a root, not a look-alike name)."""
    if cert.subject != cert.issuer:
        return False
    c = cx509.load_der_x509_certificate(cert.dump())
    try:
        c.verify_directly_issued_by(c)
    except InvalidSignature:
        return False
    except (ValueError, TypeError):  # an algorithm cryptography cannot check (e.g. an old MD5/SHA-1 root)
        return cert.self_signed in ("yes", "maybe")
    return True


def _public_key(cert: x509.Certificate) -> bytes:
    return bytes(cert.public_key.dump())


def read_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM (certificates or PKCS#7), DER or P7B file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustListError(f"Không đọc được {path} / cannot read {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN PKCS7-----" in data:
            found = pkcs7.load_pem_pkcs7_certificates(data)
        elif b"-----BEGIN" in data:
            found = cx509.load_pem_x509_certificates(data)
        else:
            try:
                found = [cx509.load_der_x509_certificate(data)]
            except ValueError:
                found = pkcs7.load_der_pkcs7_certificates(data)
    except ValueError as exc:
        raise TrustListError(
            f"{path.name} không phải chứng thư số PEM/DER/P7B / {path.name} is not a PEM, DER or P7B certificate file"
        ) from exc
    from cryptography.hazmat.primitives.serialization import Encoding

    return [x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in found]


def read_folder(directory: Path) -> list[tuple[str, x509.Certificate]]:
    """(file name, certificate) for every certificate file under ``directory`` (sub-folders included), sorted."""
    if not directory.is_dir():
        raise TrustListError(
            f"Thư mục danh sách tin cậy {directory} không tồn tại / the trust list folder {directory} does not exist"
        )
    out: list[tuple[str, x509.Certificate]] = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix.lower() in CERT_SUFFIXES:
            out += [(str(path.relative_to(directory)), c) for c in read_certificates(path)]
    return out


def shipped_vietnam() -> list[tuple[str, x509.Certificate]]:
    """Vietnam's national roots and known issuing CAs as shipped with SealTrail (see its README for sources)."""
    return [(f"vietnam/{name}", cert) for name, cert in read_folder(SHIPPED_VIETNAM)]


class _Builder:
    def __init__(self) -> None:
        self.trust = TrustList()
        self.seen: set[str] = set()
        self.root_keys: dict[bytes, tuple[bytes, str]] = {}  # subject DER → (public key, source)

    def add(self, source: str, cert: x509.Certificate, *, root: bool) -> None:
        fp = fingerprint(cert)
        if fp in self.seen:
            return
        if root:
            name = bytes(cert.subject.dump())
            known = self.root_keys.get(name)
            if known is not None and known[0] != _public_key(cert):
                self.trust.rejected.append(
                    Rejected(
                        source,
                        cert.subject.human_friendly,
                        fp,
                        f"same name as the root from {known[1]} with another key (look-alike) / "
                        f"trùng tên với gốc từ {known[1]} nhưng khác khoá (giả mạo)",
                    )
                )
                return
            self.root_keys.setdefault(name, (_public_key(cert), source))
            self.trust.roots.append(cert)
        else:
            self.trust.intermediates.append(cert)
        self.seen.add(fp)
        self.trust.sources[fp] = source


def build_trust_list(
    *,
    dev_roots: Iterable[x509.Certificate] = (),
    dev_intermediates: Iterable[x509.Certificate] = (),
    national: bool = False,
    directory: Path | None = None,
) -> TrustList:
    """The installation's trust list (see the module docstring for the sources and the look-alike rule)."""
    b = _Builder()
    for cert in dev_roots:
        b.add("development PKI", cert, root=True)
    for cert in dev_intermediates:
        b.add("development PKI", cert, root=False)
    shipped = shipped_vietnam()
    shipped_names = {bytes(c.subject.dump()): (_public_key(c), s) for s, c in shipped if is_self_signed(c)}
    if national:
        for source, cert in shipped:
            b.add(source, cert, root=is_self_signed(cert))
    else:  # the national roots' names are reserved even when the list is not trusted as a whole
        for name, value in shipped_names.items():
            b.root_keys.setdefault(name, value)
    if directory is not None:
        found = [(f"trust dir: {name}", cert) for name, cert in read_folder(directory)]
        roots = [(s, c) for s, c in found if is_self_signed(c)]
        keys_by_name: dict[bytes, set[bytes]] = {}
        for _s, c in roots:
            keys_by_name.setdefault(bytes(c.subject.dump()), set()).add(_public_key(c))
        for source, cert in roots:
            if len(keys_by_name[bytes(cert.subject.dump())]) > 1:
                b.trust.rejected.append(
                    Rejected(
                        source,
                        cert.subject.human_friendly,
                        fingerprint(cert),
                        "two roots in the folder share this name with different keys; keep only the published one / "
                        "hai chứng thư gốc cùng tên nhưng khác khoá; chỉ giữ lại chứng thư đã công bố",
                    )
                )
                continue
            b.add(source, cert, root=True)
        for source, cert in found:
            if not is_self_signed(cert):
                b.add(source, cert, root=False)
    return b.trust


def import_certificate(
    file: Path, published_sha256: str, directory: Path, *, trusted: TrustList | None = None
) -> tuple[Path, x509.Certificate]:
    """Copy the certificate of ``file`` whose SHA-256 is ``published_sha256`` into the trust folder.

    Refused when no certificate in the file has that fingerprint, and when it is a root that carries the name of an
    already trusted (or shipped national) root with another key. Never overwrites; importing twice is harmless."""
    expected = normalise_fingerprint(published_sha256)
    certs = read_certificates(file)
    match = [c for c in certs if fingerprint(c) == expected]
    if not match:
        got = ", ".join(fingerprint(c) for c in certs) or "none"
        raise TrustListError(
            "Dấu vân tay SHA-256 không khớp với chứng thư trong tệp; không nhập gì / the SHA-256 fingerprint matches "
            f"no certificate in {file.name}; nothing imported (the file holds: {got})"
        )
    cert = match[0]
    if is_self_signed(cert):
        reference = list(trusted.roots) if trusted else []
        reference += [c for _s, c in shipped_vietnam() if is_self_signed(c)]
        for other in reference:
            if other.subject == cert.subject and _public_key(other) != _public_key(cert):
                raise TrustListError(
                    f"Chứng thư gốc '{cert.subject.human_friendly}' trùng tên với một gốc đã tin cậy nhưng khác khoá "
                    "(giả mạo?); không nhập / a trusted root already has this name with another key (a look-alike?); "
                    f"not imported (trusted one: {fingerprint(other)})"
                )
    directory.mkdir(parents=True, exist_ok=True)
    cn = cert.subject.native.get("common_name", "certificate")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", str(cn)).strip("-")[:60] or "certificate"
    target = directory / f"{safe}_{expected[:8].lower()}.pem"
    for name, existing in read_folder(directory):
        if fingerprint(existing) == expected:
            return directory / name, cert
    from asn1crypto import pem

    with target.open("xb") as out:  # never overwrite
        out.write(pem.armor("CERTIFICATE", cert.dump()))
    return target, cert
