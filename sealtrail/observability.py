"""Operations endpoints: /readyz (is this instance fit to issue and verify right now?) and /metrics (Prometheus)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import inspect, text

from sealtrail.deployment import Deployment
from signer.metrics import OCSP_ERRORS, TSA_ERRORS

OK, WARN, FAIL = "ok", "warn", "fail"
JOB_TABLES = ("procrastinate_jobs",)  # a task engine's queue table, when one is installed


def _check(action: Callable[[], tuple[str, str]]) -> dict[str, str]:
    try:
        status, detail = action()
    except Exception as exc:
        status, detail = FAIL, f"{exc.__class__.__name__}: {exc}"[:300]
    return {"status": status, "detail": detail}


_PROBES: dict[str, tuple[float, dict[str, str]]] = {}
_PROBES_LOCK = threading.Lock()


def _cached(name: str, ttl: float, action: Callable[[], tuple[str, str]]) -> dict[str, str]:
    """``_check(action)``, its answer reused for ``ttl`` seconds: /readyz called every few seconds by a load
    balancer (or by anyone) must not send an OCSP request and a timestamp request to the CA each time."""
    now = time.monotonic()
    with _PROBES_LOCK:
        hit = _PROBES.get(name)
        if hit is not None and hit[0] > now:
            return dict(hit[1])
    result = _check(action)
    if ttl > 0:
        with _PROBES_LOCK:
            _PROBES[name] = (now + ttl, result)
            if len(_PROBES) > 256:
                _PROBES.pop(next(iter(_PROBES)))
    return dict(result)


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


def trust_check(dep: Deployment) -> tuple[str, str]:
    """The trust list every checker reads: its size, root fingerprints and earliest root expiry (fail when empty)."""
    summary = dep.trust_list.summary()
    if not summary["roots"]:
        dep.trust_roots  # noqa: B018 - raises the DeploymentError that names the settings to add
    fingerprints = ",".join(str(f) for f in summary["root_fingerprints"])  # type: ignore[attr-defined]
    detail = (
        f"{summary['roots']} roots, {summary['intermediates']} intermediates "
        f"({summary['expired_intermediates']} expired, kept for old documents); earliest root expiry "
        f"{summary['earliest_root_expiry']}; sha256 {fingerprints}"
    )
    if summary["rejected"]:
        return WARN, f"{detail}; {len(summary['rejected'])} look-alike or conflicting roots rejected"  # type: ignore[arg-type]
    return OK, detail


def identities_check(dep: Deployment) -> tuple[str, str]:
    """The registered signing identities: how many are active, and which certificates expire soon (warn)."""
    from registry.identities import list_identities, utcnow

    now = utcnow()
    rows = [r for r in list_identities(dep.engine) if r.retired_at is None]
    if not rows:
        return OK, ""
    active = [r for r in rows if r.valid_until.replace(tzinfo=now.tzinfo) > now]
    soon = [
        r
        for r in active
        if (r.valid_until.replace(tzinfo=now.tzinfo) - now).total_seconds() < dep.settings.cert_expiry_warn_days * 86400
    ]
    detail = f"{len(active)} active signing identities"
    if soon:
        names = ", ".join(f"#{r.id} {r.organisation}/{r.role} {r.valid_until:%Y-%m-%d}" for r in soon)
        return WARN, f"{detail}; expiring within {dep.settings.cert_expiry_warn_days} days: {names}"
    return OK, detail


def readiness(dep: Deployment) -> dict[str, dict[str, str]]:
    """Every check by name, each {status: ok|warn|fail, detail}. Nothing here signs anything or logs a secret."""
    s = dep.settings
    checks: dict[str, dict[str, str]] = {}

    def database() -> tuple[str, str]:
        with dep.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return OK, dep.engine.dialect.name

    checks["database"] = _check(database)
    checks["trust"] = _check(lambda: trust_check(dep))
    identities = _check(lambda: identities_check(dep))
    if identities["detail"]:
        checks["identities"] = identities

    from sealtrail.install import issuing_missing

    missing = issuing_missing(dep)
    keys: dict[str, Any] = {}
    if missing:  # a verification-only instance: ready to verify, and says what issuing still lacks
        checks["issuing"] = {"status": WARN, "detail": "; ".join(missing)}
    else:
        try:
            keys = dep.signing_keys
        except Exception as exc:
            checks["keys"] = {"status": FAIL, "detail": f"{exc.__class__.__name__}: {exc}"[:300]}
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
        probe = f"ocsp {url} {cert.serial_number}"
        checks[name] = _cached(
            probe, s.readiness_cache_seconds, partial(_ocsp_probe, url, cert, issuer, s.readiness_timeout)
        )

    try:
        tsa_urls = dep.timestamp_urls
    except Exception as exc:
        checks["tsa"] = {"status": FAIL, "detail": str(exc)}
        tsa_urls = []
    for n, url in enumerate(tsa_urls):
        checks[f"tsa:{n}"] = _cached(
            f"tsa {url}", s.readiness_cache_seconds, partial(_tsa_probe, url, s.readiness_timeout)
        )
    if tsa_urls and all(checks[f"tsa:{n}"]["status"] == FAIL for n in range(len(tsa_urls))):
        checks["tsa"] = {"status": FAIL, "detail": "no timestamp authority is reachable"}
    elif tsa_urls:  # one failing authority of several is a warning: signing fails over to the next
        for n in range(len(tsa_urls)):
            if checks[f"tsa:{n}"]["status"] == FAIL:
                checks[f"tsa:{n}"]["status"] = WARN
    if missing:  # timestamps are needed to issue, not to verify: a verification-only instance only warns
        for name, check in checks.items():
            if name.startswith("tsa") and check["status"] == FAIL:
                check["status"] = WARN
    return checks


class DatabaseCollector(Collector):
    """Figures read from the database at scrape time, so they agree across every process of the installation."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep

    def collect(self) -> Iterator[Any]:
        from ledger.store import Ledger  # noqa: F401 - the ledger tables are defined there

        up = GaugeMetricFamily("sealtrail_database_up", "1 when the metrics could be read from the database")
        try:
            families = list(self._families())
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Any]:
        engine = self.dep.engine
        with engine.connect() as conn:
            by_status: dict[str, int] = dict(
                conn.execute(text("SELECT status, COUNT(*) FROM documents GROUP BY status")).all()
            )
            issued = conn.execute(text("SELECT COUNT(*) FROM documents WHERE issued_at IS NOT NULL")).scalar_one()
            size = conn.execute(text("SELECT size FROM ledger_state WHERE id = 1")).scalar_one_or_none() or 0
            latest = conn.execute(
                text("SELECT size, created_at FROM ledger_checkpoints ORDER BY id DESC LIMIT 1")
            ).one_or_none()
            tables = set(inspect(conn).get_table_names())
            queue: dict[str, int] = {}
            for table in JOB_TABLES:
                if table in tables:
                    rows = conn.execute(text(f"SELECT status, COUNT(*) FROM {table} GROUP BY status")).all()  # noqa: S608
                    for status, count in rows:
                        queue[str(status)] = queue.get(str(status), 0) + int(count)

        total = CounterMetricFamily("sealtrail_documents_issued", "Documents issued (signed and logged) so far")
        total.add_metric([], int(issued))
        yield total
        docs = GaugeMetricFamily("sealtrail_documents", "Documents in the registry by status", labels=["status"])
        for status in ("pending", "issued", "revoked", "superseded"):
            docs.add_metric([status], int(by_status.get(status, 0)))
        yield docs
        yield GaugeMetricFamily("sealtrail_ledger_entries", "Entries in the public log", value=int(size))
        if latest is not None:
            created = latest[1]
            if isinstance(created, str):
                created = datetime.fromisoformat(created)
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - created).total_seconds())
            yield GaugeMetricFamily(
                "sealtrail_ledger_checkpoint_size", "Entries covered by the newest checkpoint", value=int(latest[0])
            )
        else:
            age = float("nan")
        yield GaugeMetricFamily(
            "sealtrail_ledger_checkpoint_age_seconds", "Age of the newest signed checkpoint", value=age
        )
        depth = GaugeMetricFamily(
            "sealtrail_job_queue_depth", "Batch jobs waiting or running (0 without a job queue)", labels=["status"]
        )
        depth.add_metric(["todo"], queue.get("todo", 0))
        depth.add_metric(["doing"], queue.get("doing", 0))
        yield depth


def make_ops_router(dep: Deployment) -> APIRouter:
    router = APIRouter(tags=["operations"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(dep))

    allowed = [ipaddress.ip_network(net, strict=False) for net in dep.settings.metrics_allow]

    def internal(request: Request) -> bool:
        """From an allow-listed address (loopback by default), or with an API key holding the ``metrics`` scope;
        HTTPException(403) for a key without that scope."""
        from accounts.permissions import METRICS_SCOPE
        from sealtrail.web.api import bearer_actor

        actor = bearer_actor(dep, request)
        if actor is not None:
            if METRICS_SCOPE not in actor.scopes:
                raise HTTPException(403, "Khoá API này không có quyền 'metrics' / this key lacks the metrics scope")
            return True
        try:
            address = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            return False
        return any(address in net for net in allowed)

    @router.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Ready when the database answers, the keys are usable, a TSA and the OCSP responders are reachable and
        no signing certificate has expired. 503 otherwise. Each check and why it failed (key labels, certificate
        dates, OCSP and TSA addresses) only for ``SEALTRAIL_METRICS_ALLOW`` addresses or a ``metrics`` API key;
        others see the status alone. OCSP and TSA answers are reused for ``SEALTRAIL_READINESS_CACHE_SECONDS``."""
        start = time.perf_counter()
        checks = readiness(dep)
        ready = all(c["status"] != FAIL for c in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
        if internal(request):
            body |= {"checks": checks, "seconds": round(time.perf_counter() - start, 3)}
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    def may_read_metrics(request: Request) -> None:
        """From an allow-listed address (loopback by default), or with an API key holding the ``metrics`` scope."""
        if not internal(request):
            raise HTTPException(
                401, "Cần khoá API có quyền 'metrics' hoặc gọi từ địa chỉ được phép / a metrics key is required"
            )

    @router.get(
        "/metrics",
        response_class=Response,
        dependencies=[Depends(may_read_metrics)],
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def metrics() -> Response:
        """Prometheus text format: this process's counters and histograms, then figures from the database. Readable
        from the addresses in ``SEALTRAIL_METRICS_ALLOW`` (loopback by default) or with a ``metrics`` API key."""
        return Response(generate_latest(REGISTRY) + generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
