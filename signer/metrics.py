"""Process-wide Prometheus metrics of the signing path: signing latency per key backend, TSA and OCSP errors."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

SIGNING_SECONDS = Histogram(
    "sealtrail_signing_seconds",
    "Time one signature takes in its key backend (the private-key operation only)",
    ["backend", "role"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TSA_ERRORS = Counter("sealtrail_tsa_errors", "Timestamp authority requests that failed", ["url"])
OCSP_ERRORS = Counter("sealtrail_ocsp_errors", "OCSP requests that failed or got no usable answer", ["url"])


def backend_kind(backend: Any) -> str:
    name = type(backend).__name__.lower()
    for kind in ("pkcs11", "soft"):
        if kind in name:
            return kind
    return name.removesuffix("keybackend") or "other"


class TimedKey:
    """A KeyBackend that records how long each signature takes, labelled by backend kind and signing role."""

    def __init__(self, backend: Any, role: str) -> None:
        self.backend = backend
        self._histogram = SIGNING_SECONDS.labels(backend=backend_kind(backend), role=role)

    @property
    def label(self) -> str:
        return str(self.backend.label)

    @property
    def certificate(self) -> Any:
        return self.backend.certificate

    @property
    def chain(self) -> Any:
        return self.backend.chain

    @property
    def mechanism(self) -> Any:
        return self.backend.mechanism

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        start = time.perf_counter()
        try:
            return bytes(self.backend.sign_digest(digest, digest_algorithm))
        finally:
            self._histogram.observe(time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:  # close(), config, … of the wrapped backend
        return getattr(self.backend, name)
