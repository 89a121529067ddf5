"""Revocation data a verifier holds besides each document's own (issue #20, "revocation on every path").

A signed document carries its own proof (the PDF's DSS, the XML's RevocationValues) when it is B-LT. A document
without it (XAdES B-B/B-T, a PDF with no DSS) used to pass on a soft-fail; now its signer's status must be proven
by something, else it is at best *indeterminate*. That something is what this module holds: the CRLs (and OCSP
responses) an installation or a trust bundle knows — the dev PKI's current CRLs on an installation, the
``crls/`` directory of a trust bundle (written by ``sealtrail export-trust``). Checked against them, a certificate
revoked before the signature was made (the signature timestamp, else now) is *invalid*.

Nothing is fetched from the network here: the verifier stays offline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from asn1crypto import crl, ocsp, pem

CRL_DIR = "revocation"  # in a trust bundle: CRLs (*.crl, DER or PEM) and OCSP responses (*.ocsp, DER)
Loaded = tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]


class LocalRevocation:
    """CRLs and OCSP responses from a loader, kept for ``ttl`` seconds (an installation's CRLs are re-made when
    stale; a bundle's are read once)."""

    def __init__(self, load: Callable[[], Loaded], ttl: float = 600.0) -> None:
        self._load = load
        self._ttl = ttl
        self._cached: tuple[float, Loaded] | None = None
        self._lock = threading.Lock()

    def get(self) -> Loaded:
        now = time.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
        loaded = self._load()
        with self._lock:
            self._cached = (now, loaded)
        return loaded

    @classmethod
    def fixed(cls, crls: list[crl.CertificateList], ocsps: list[ocsp.OCSPResponse] | None = None) -> LocalRevocation:
        data: Loaded = (list(crls), list(ocsps or []))
        return cls(lambda: data, ttl=float("inf"))

    @classmethod
    def from_directory(cls, directory: Path) -> LocalRevocation:
        """The ``*.crl`` and ``*.ocsp`` files of a directory (missing directory: none)."""
        return cls.fixed(read_crls(directory), read_ocsps(directory))


def read_crls(directory: Path) -> list[crl.CertificateList]:
    out: list[crl.CertificateList] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.crl")):
        data = path.read_bytes()
        ders = [der for _kind, _h, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
        for der in ders:
            try:
                parsed = crl.CertificateList.load(der)
                parsed.native  # noqa: B018 (parse it now: a damaged file is skipped, not a crash later)
            except ValueError:
                continue
            out.append(parsed)
    return out


def read_ocsps(directory: Path) -> list[ocsp.OCSPResponse]:
    out: list[ocsp.OCSPResponse] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.ocsp")):
        try:
            parsed = ocsp.OCSPResponse.load(path.read_bytes())
            parsed.native  # noqa: B018 (parse it now: a damaged file is skipped)
        except ValueError:
            continue
        out.append(parsed)
    return out


def write_revocation(directory: Path, loaded: Loaded) -> None:
    """Write CRLs and OCSP responses as ``read_crls``/``read_ocsps`` read them."""
    crls, ocsps = loaded
    directory.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(crls):
        (directory / f"{i:02d}.crl").write_bytes(pem.armor("X509 CRL", item.dump()))
    for i, response in enumerate(ocsps):
        (directory / f"{i:02d}.ocsp").write_bytes(response.dump())
