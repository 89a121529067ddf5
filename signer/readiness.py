"""Is this instance fit to issue right now? The database answers, each signing key is usable, no signing
certificate has expired (or expires soon: a warning), each OCSP responder answers and does not say "revoked", and a
timestamp authority is reachable. Served as ``/readyz`` (``sealtrail.observability``). Nothing here signs anything
or logs a secret."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from signer.host import Installation
from signer.metrics import OCSP_ERRORS, TSA_ERRORS

OK, WARN, FAIL = "ok", "warn", "fail"


def _check(action: Callable[[], tuple[str, str]]) -> dict[str, str]:
    try:
        status, detail = action()
    except Exception as exc:
        status, detail = FAIL, f"{exc.__class__.__name__}: {exc}"[:300]
    return {"status": status, "detail": detail}


def _issuer_of(cert: Any, chain: list[Any]) -> Any | None:
    return next((c for c in chain if c.subject == cert.issuer), None)


def _ocsp_probe(url: str, cert: Any, issuer: Any, timeout: float) -> tuple[str, str]:
    """A real OCSP request for the signer's certificate: the responder must answer, and not say 'revoked'."""
    from asn1crypto import ocsp as asn1_ocsp
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    c = cx509.load_der_x509_certificate(cert.dump())
    i = cx509.load_der_x509_certificate(issuer.dump())
    request = ocsp.OCSPRequestBuilder().add_certificate(c, i, hashes.SHA1()).build()  # noqa: S303 - OCSP CertID
    try:
        response = httpx.post(
            url,
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
            timeout=timeout,
        )
        answer = asn1_ocsp.OCSPResponse.load(response.content)  # asn1crypto: lenient about time encodings
        if answer["response_status"].native != "successful":
            raise ValueError(f"responder said {answer['response_status'].native}")
        status = answer.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name
    except Exception:
        OCSP_ERRORS.labels(url=url).inc()
        raise
    if status == "revoked":
        return FAIL, f"{url}: the certificate is REVOKED"
    return OK, f"{url}: {status}"


def _tsa_probe(url: str, timeout: float) -> tuple[str, str]:
    """The timestamp authority answers HTTP (no token is requested: some authorities charge per timestamp)."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        TSA_ERRORS.labels(url=url).inc()
        raise
    if response.status_code >= 500:
        TSA_ERRORS.labels(url=url).inc()
        return FAIL, f"{url}: HTTP {response.status_code}"
    return OK, f"{url}: reachable (HTTP {response.status_code})"


def readiness(dep: Installation) -> dict[str, dict[str, str]]:
    """Every check by name, each {status: ok|warn|fail, detail}. Nothing here signs anything or logs a secret."""
    s = dep.settings
    checks: dict[str, dict[str, str]] = {}

    def database() -> tuple[str, str]:
        with dep.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return OK, dep.engine.dialect.name

    checks["database"] = _check(database)

    try:
        keys = dep.signing_keys
    except Exception as exc:
        checks["keys"] = {"status": FAIL, "detail": f"{exc.__class__.__name__}: {exc}"[:300]}
        keys = {}
    ocsp_targets: dict[str, tuple[Any, Any]] = {}
    try:
        intermediates = list(dep.intermediates)
    except Exception:  # production without a configured trust list: the keys' own chains must do
        intermediates = []
    now = datetime.now(UTC)
    for role, key in keys.items():

        def key_ready(key: Any = key) -> tuple[str, str]:
            ready = getattr(getattr(key, "backend", key), "check_ready", None)
            if ready is not None:
                ready()  # PKCS#11: the token answers, the session is logged in, the private key is there
            return OK, str(key.label)

        checks[f"key:{role}"] = _check(key_ready)

        def expiry(key: Any = key) -> tuple[str, str]:
            validity = key.certificate["tbs_certificate"]["validity"]
            not_before, not_after = validity["not_before"].native, validity["not_after"].native
            days = (not_after - now).total_seconds() / 86400
            if now < not_before:
                return FAIL, f"not valid before {not_before.isoformat()}"
            if days <= 0:
                return FAIL, f"expired on {not_after.isoformat()}"
            status = WARN if days < s.cert_expiry_warn_days else OK
            return status, f"expires {not_after.isoformat()} (in {int(days)} days)"

        checks[f"certificate:{role}"] = _check(expiry)
        urls = list(key.certificate.ocsp_urls)
        issuer = _issuer_of(key.certificate, [*key.chain, *intermediates])
        if urls and issuer is None:
            checks[f"ocsp:{role}"] = {"status": WARN, "detail": "the issuer's certificate is unknown; OCSP not probed"}
        elif urls:
            ocsp_targets[f"ocsp:{role}"] = (urls[0], (key.certificate, issuer))

    for name, (url, (cert, issuer)) in ocsp_targets.items():
        checks[name] = _check(lambda u=url, c=cert, i=issuer: _ocsp_probe(u, c, i, s.readiness_timeout))

    try:
        tsa_urls = dep.timestamp_urls
    except Exception as exc:
        checks["tsa"] = {"status": FAIL, "detail": str(exc)}
        tsa_urls = []
    for n, url in enumerate(tsa_urls):
        checks[f"tsa:{n}"] = _check(lambda u=url: _tsa_probe(u, s.readiness_timeout))
    if tsa_urls and all(checks[f"tsa:{n}"]["status"] == FAIL for n in range(len(tsa_urls))):
        checks["tsa"] = {"status": FAIL, "detail": "no timestamp authority is reachable"}
    elif tsa_urls:  # one failing authority of several is a warning: signing fails over to the next
        for n in range(len(tsa_urls)):
            if checks[f"tsa:{n}"]["status"] == FAIL:
                checks[f"tsa:{n}"]["status"] = WARN
    return checks
