"""Operations endpoints: /readyz (is this instance fit to issue and verify right now?) and /metrics (Prometheus)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import inspect, text

from sealtrail.deployment import Deployment
from signer.readiness import FAIL, readiness

JOB_TABLES = ("procrastinate_jobs",)  # a task engine's queue table, when one is installed


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
            by_status = dict(conn.execute(text("SELECT status, COUNT(*) FROM documents GROUP BY status")).all())
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

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready when the database answers, the keys are usable, a TSA and the OCSP responders are reachable and
        no signing certificate has expired. 503 otherwise; each check says why."""
        start = time.perf_counter()
        checks = readiness(dep)
        ready = all(c["status"] != FAIL for c in checks.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    allowed = [ipaddress.ip_network(net, strict=False) for net in dep.settings.metrics_allow]

    def may_read_metrics(request: Request) -> None:
        """From an allow-listed address (loopback by default), or with an API key holding the ``metrics`` scope."""
        from accounts.permissions import METRICS_SCOPE
        from sealtrail.web.api import bearer_actor

        actor = bearer_actor(dep, request)
        if actor is not None:
            if METRICS_SCOPE not in actor.scopes:
                raise HTTPException(403, "Khoá API này không có quyền 'metrics' / this key lacks the metrics scope")
            return
        try:
            address = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in allowed):
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
