"""Batch jobs: issuing a whole class, school or province as a job that survives crashes and is never done twice.

A batch is one ``batches`` row plus one ``batch_items`` row per document, holding the checked input and the
document id and QR token reserved for it. On PostgreSQL one procrastinate task per item is deferred in the SAME
transaction as those rows (procrastinate writes its job rows through our connection), so a batch is either
wholly queued or not at all; ``sealtrail worker`` processes on any number of machines take the tasks. On SQLite
the same function, :func:`run_item`, runs in a thread of the serving process (:class:`LocalRunner`).

Idempotency: an item whose document is already issued does nothing; an item whose signing died midway is
signed again under its reserved id, and :meth:`signer.issue.Issuer.issue` flips the document to *issued* only
if it is still pending, in the ledger append's transaction, so a document gets exactly one ``issue`` entry.
Only transient failures are retried, with exponential backoff: those whose error says so
(:attr:`errors.SealTrailError.transient`: a timestamp or OCSP service down, a token that stopped answering, a
store that did not answer) and, of foreign errors, the network's, the disk's and the database's (connection lost,
conflicts). Anything else fails the item at once with its message for a person: a wrong or locked PIN (retrying
would count towards locking the token), a missing key, an unreadable PDF, invalid data. A transient failure on
the last attempt also fails the item, with its reason.
A worker killed mid-task leaves its job "doing"; every worker re-queues jobs of workers whose heartbeat stopped.
An item that dies of an error nobody foresaw ends *failed* with that error and what to do, never stays *running*.

The principal's "approve and sign this class" uses the same batches: its items' input names the work item
(``{"workflow_item": …}``) and :mod:`workflow.operations` adds the principal's signature and the seal to
the teacher-signed document (see ``WORKFLOW_INPUT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import procrastinate
from procrastinate import RetryStrategy
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import SQLModel

import errors
import schemas
from jobs.host import Installation
from registry.records import DocumentRecord, DocumentStatus
from schemas.qrseal import new_token
from signer.issue import AlreadyIssued, Issuer, new_doc_id

log = logging.getLogger("jobs.batches")

QUEUE = "sealtrail-batches"
AWAITING_TOKEN = "awaiting_token"  # noqa: S105  # an approval handed to the principal's own key: waits for `sealtrail agent`
ITEM_STATES = ("queued", "running", AWAITING_TOKEN, "issued", "failed", "cancelled")
FINAL_ITEM_STATES = ("issued", "failed", "cancelled")

batches = Table(
    "batches",
    SQLModel.metadata,
    Column("id", String(32), primary_key=True),
    Column("school_code", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # queued, running, done, failed, cancelled
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
batch_items = Table(
    "batch_items",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), ForeignKey("batches.id"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("doc_id", String(64), nullable=False, unique=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("input", JSON, nullable=True),  # the checked input; cleared once issued (it is in the signed XML)
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", String(1000), nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class TransientError(errors.TransientError):
    """This item goes back to the queue and is tried again later (procrastinate retries exactly this type)."""


def is_transient(exc: BaseException) -> bool:
    """Whether trying the item again later may help: SealTrail's errors say so themselves; of foreign errors, the
    network's and the disk's (OSError, TimeoutError) and the database's OperationalError (connection lost, lock
    timeouts). Everything else is permanent."""
    if isinstance(exc, errors.SealTrailError):
        return exc.transient
    return isinstance(exc, OSError | TimeoutError | OperationalError)


@dataclass
class RetryPolicy:
    """How often and how patiently a transient failure is retried (from Settings in a running process)."""

    max_attempts: int = 8
    base_wait: float = 2.0  # seconds; attempt n waits base_wait * 2**(n-1)

    def wait(self, attempt: int) -> float:
        return self.base_wait * 2.0 ** max(0, attempt - 1)


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------------- the work
class _Runtime:
    """What a process needs to issue documents: the deployment, and one Issuer per thread."""

    def __init__(self, dep: Installation) -> None:
        self.dep = dep
        self._local = threading.local()
        self.extras: dict[str, object] = {}  # what an item handler keeps per runtime (e.g. its audit trail)

    def issuer(self) -> Issuer:
        issuer = getattr(self._local, "issuer", None)
        if issuer is None:
            issuer = self._local.issuer = self.dep.make_issuer()
        return issuer


_runtime: _Runtime | None = None
# Builds the installation from the environment when a task runs in a process that set none (the shell sets this:
# sealtrail.deployment; the domain never imports it).
default_deployment: Callable[[], Installation] | None = None
_runtimes: dict[int, _Runtime] = {}
_runtime_lock = threading.Lock()


def runtime_for(dep: Installation) -> _Runtime:
    """The runtime of one Deployment object (tests run several in one process)."""
    with _runtime_lock:
        rt = _runtimes.get(id(dep))
        if rt is None or rt.dep is not dep:
            rt = _runtimes[id(dep)] = _Runtime(dep)
        return rt


def use_deployment(dep: Installation) -> None:
    """Make procrastinate tasks in this process work for ``dep`` (a Deployment) and take its retry settings."""
    global _runtime
    _runtime = runtime_for(dep)
    s = dep.settings
    # procrastinate waits whole seconds: round up, so a retry never comes sooner than the setting asks.
    RETRY.max_attempts, RETRY.wait, RETRY.exponential_wait = s.job_max_attempts, math.ceil(s.job_retry_wait), 2


def _current_runtime() -> _Runtime:
    global _runtime
    if _runtime is None and default_deployment is not None:
        use_deployment(default_deployment())
    if _runtime is None:
        raise RuntimeError("no deployment for batch jobs in this process: call jobs.batches.use_deployment first")
    return _runtime


WORKFLOW_INPUT = "workflow_item"  # an item's input naming a work item the principal approved


class ItemHandler(Protocol):
    """Runs a kind of batch item other than "issue this document's data" (e.g. a principal's approval)."""

    def run_job_item(self, rt: _Runtime, row: RowMapping) -> bool:
        """Do the item's work; True when it now waits for a signer's own key (a token signs it later)."""

    def job_item_issued(self, rt: _Runtime, row: RowMapping) -> None:
        """The item's document is published (may run again: each step must be conditional)."""

    def job_item_failed(self, rt: _Runtime, row: RowMapping, reason: str, exc: BaseException | None = None) -> None:
        """The job gave up on the item, with ``reason`` (``exc``: the error, None when nobody foresaw it)."""


# The handler registry: an item whose input (a JSON object) has one of these keys is run by that handler; any
# other item's input is a document's data, issued as it is. Filled in by jobs/__init__.py.
HANDLERS: dict[str, ItemHandler] = {}


def register_handler(input_key: str, handler: ItemHandler) -> None:
    HANDLERS[input_key] = handler


def _workflow(row: RowMapping) -> ItemHandler | None:
    """The handler of this batch item (by the key its input carries), or None for a plain document."""
    if isinstance(row["input"], dict):
        for key, handler in HANDLERS.items():
            if key in row["input"]:
                return handler
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:900]


def run_item(item_id: int, attempt: int, rt: _Runtime | None = None) -> str:
    """Issue one batch item (``attempt`` counts from 1); returns the item's state afterwards.

    Raises TransientError when the item should be tried again later (the database was unreachable or a
    transaction conflicted, or a signing service failed: then the item is back in "queued")."""
    rt = rt or _current_runtime()
    try:
        return _run_item(item_id, attempt, rt)
    except DBAPIError as exc:  # connection lost, serialisation failure, deadlock: the whole step is redone
        if attempt >= _policy(rt.dep).max_attempts:
            with contextlib.suppress(Exception):  # the database may still be away; then the worker retries later
                return _fail_unexpected(rt, item_id, exc)
        raise TransientError(_reason(exc)) from exc
    except TransientError:
        raise
    except Exception as exc:  # a bug or a broken installation: the item must not stay "running" for ever
        log.exception("batch item %s stopped on an unexpected error", item_id)
        return _fail_unexpected(rt, item_id, exc)


def _fail_unexpected(rt: _Runtime, item_id: int, exc: BaseException) -> str:
    engine: Engine = rt.dep.engine
    with engine.connect() as conn:
        row = conn.execute(select(batch_items).where(batch_items.c.id == item_id)).mappings().first()
    if row is None or row["state"] in FINAL_ITEM_STATES:
        return str(row["state"]) if row is not None else "missing"
    if _document_status(engine, row["doc_id"]) not in (None, DocumentStatus.PENDING.value):
        workflow = _workflow(row)
        if workflow is not None:  # the work item follows its document if it can (each of its steps is conditional)
            with contextlib.suppress(Exception):
                workflow.job_item_issued(rt, row)
        return _finish(engine, row, "issued")  # it was published before the error: it counts as issued
    reason = (
        f"Lỗi không lường trước ({type(exc).__name__}: {_reason(exc)[:300]}); văn bản CHƯA được cấp và không có gì "
        "được ghi hai lần. Gửi nội dung này và nhật ký máy chủ (jobs.batches) cho bộ phận kỹ thuật, rồi ký lại / "
        "unexpected error; the document was NOT issued and nothing was written twice. Send this text and the server "
        "log (jobs.batches) to technical support, then retry"
    )
    return _fail(rt, row, reason, None)


def _fail(rt: _Runtime, row: RowMapping, reason: str, exc: BaseException | None = None) -> str:
    """Finish an item as failed (with its reason); an approval's work item goes back to the principal, with advice
    chosen by the type of ``exc`` (None: an error nobody foresaw).

    The work item moves first, as on success: whoever sees the batch failed (a page polling its progress) then
    finds the work item already back. The batch item is finished even when moving the work item raised."""
    workflow = _workflow(row)
    try:
        if workflow is not None:
            workflow.job_item_failed(rt, row, reason, exc)
    finally:
        state = _finish(rt.dep.engine, row, "failed", reason, claimed_only=False)
    return state


def _run_item(item_id: int, attempt: int, rt: _Runtime) -> str:
    engine: Engine = rt.dep.engine
    items = batch_items.c
    with engine.begin() as conn:
        row = conn.execute(select(batch_items).where(items.id == item_id)).mappings().first()
        if row is None:
            return "missing"
        if row["state"] in FINAL_ITEM_STATES:
            return str(row["state"])
        claimed = conn.execute(
            batch_items.update()
            .where(items.id == item_id, items.state.in_(("queued", "running")))
            .values(state="running", attempts=attempt, updated_at=_now())
        ).rowcount
        if not claimed:
            return "missing"
        conn.execute(
            batches.update().where(batches.c.id == row["batch_id"], batches.c.state == "queued").values(state="running")
        )

    workflow = _workflow(row)
    if _document_status(engine, row["doc_id"]) not in (None, DocumentStatus.PENDING.value):
        if workflow is not None:
            workflow.job_item_issued(rt, row)  # the work item and the superseded document follow, once
        return _finish(engine, row, "issued")  # issued by a run that died before recording it here
    try:
        if workflow is not None:
            if workflow.run_job_item(rt, row):  # the principal's own key signs next; token_signed finishes it
                _finish(engine, row, AWAITING_TOKEN)
                token_signed(rt.dep, row["doc_id"])  # in case the token signed while this step was running
                return AWAITING_TOKEN
        else:
            rt.issuer().issue(schemas.parse_document(row["input"]), doc_id=row["doc_id"], token=row["token"])
    except AlreadyIssued:
        pass
    except schemas.SchemaError as exc:
        problems = "; ".join(f"{p.where}: {p.message}" if p.where else p.message for p in exc.problems)
        return _fail(rt, row, f"Dữ liệu không hợp lệ / invalid data: {problems}", exc)
    except errors.SealTrailError as exc:
        if not is_transient(exc):  # a wrong PIN, a missing key, an unreadable PDF: the same again would fail again
            log.warning("batch item %s (%s) failed, not retried: %s", item_id, row["doc_id"], exc)
            return _fail(rt, row, _reason(exc), exc)
        return _retry_or_fail(rt, row, attempt, exc)
    except (OSError, TimeoutError, OperationalError) as exc:
        return _retry_or_fail(rt, row, attempt, exc)
    except DBAPIError:
        raise
    except Exception as exc:
        log.exception("batch item %s (%s) failed", item_id, row["doc_id"])
        return _fail(rt, row, f"{type(exc).__name__}: {_reason(exc)}", exc)
    if workflow is not None:
        workflow.job_item_issued(rt, row)
    return _finish(engine, row, "issued")


def _retry_or_fail(rt: _Runtime, row: RowMapping, attempt: int, exc: BaseException) -> str:
    """A transient failure: back to the queue (raising TransientError) unless this was the last attempt."""
    if attempt >= _policy(rt.dep).max_attempts:
        return _fail(rt, row, f"Sau {attempt} lần thử / after {attempt} attempts: {_reason(exc)}", exc)
    items = batch_items.c
    with rt.dep.engine.begin() as conn:
        conn.execute(
            batch_items.update()
            .where(items.id == row["id"], items.state == "running")
            .values(state="queued", error=f"lần {attempt} / attempt {attempt}: {_reason(exc)}", updated_at=_now())
        )
    log.warning("batch item %s (%s) will be retried: %s", row["id"], row["doc_id"], exc)
    raise TransientError(_reason(exc)) from exc


def _policy(dep: Installation) -> RetryPolicy:
    s = dep.settings
    return RetryPolicy(s.job_max_attempts, s.job_retry_wait)


def _document_status(engine: Engine, doc_id: str) -> str | None:
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return conn.execute(select(table.c.status).where(table.c.id == doc_id)).scalar()


def _finish(engine: Engine, row: RowMapping, state: str, error: str | None = None, *, claimed_only: bool = True) -> str:
    """Record an item's final state and, when it was the batch's last open item, the batch's."""
    items = batch_items.c
    values: dict[str, Any] = {"state": state, "updated_at": _now(), "error": error}
    if state == "issued":
        values["input"] = None  # the data now lives in the signed documents; keep no second copy
    with engine.begin() as conn:
        # Lock the batch row first so two workers finishing its last two items cannot both miss the end.
        conn.execute(select(batches.c.id).where(batches.c.id == row["batch_id"]).with_for_update())
        open_states = ("running",) if claimed_only else ("queued", "running", AWAITING_TOKEN)
        conn.execute(batch_items.update().where(items.id == row["id"], items.state.in_(open_states)).values(**values))
        _close_if_finished(conn, row["batch_id"])
    return state


def _close_if_finished(conn: Connection, batch_id: str) -> None:
    counts = _counts(conn, batch_id)
    if counts["queued"] or counts["running"] or counts[AWAITING_TOKEN]:
        return
    current = conn.execute(select(batches.c.state).where(batches.c.id == batch_id)).scalar()
    if current in ("done", "failed", "cancelled"):
        return
    state = "failed" if counts["failed"] else "cancelled" if counts["cancelled"] else "done"
    conn.execute(batches.update().where(batches.c.id == batch_id).values(state=state, finished_at=_now()))


def token_signed(dep: Installation, doc_id: str) -> None:
    """The principal's own key signed an approved document (the seal and publishing follow in the signing flow):
    once it is issued, its batch item and work item finish as the job would have."""
    if _document_status(dep.engine, doc_id) in (None, DocumentStatus.PENDING.value):
        return  # the seal's step is delayed: `sealtrail signing resume` publishes it, the next call finishes it
    with dep.engine.connect() as conn:
        row = (
            conn.execute(
                select(batch_items).where(batch_items.c.doc_id == doc_id, batch_items.c.state == AWAITING_TOKEN)
            )
            .mappings()
            .first()
        )
    if row is None:
        return
    workflow = _workflow(row)
    if workflow is not None:
        workflow.job_item_issued(runtime_for(dep), row)
    _finish(dep.engine, row, "issued", claimed_only=False)


def _counts(conn: Connection, batch_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(batch_items.c.state, func.count())
        .where(batch_items.c.batch_id == batch_id)
        .group_by(batch_items.c.state)
    ).all()
    counts = dict.fromkeys(ITEM_STATES, 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


# ------------------------------------------------------------------------------------------------ procrastinate
tasks_app = procrastinate.App(connector=procrastinate.PsycopgConnector())
RETRY = RetryStrategy(max_attempts=8, wait=2, exponential_wait=2, retry_exceptions=[TransientError])


@tasks_app.task(name="sealtrail.issue_batch_item", queue=QUEUE, pass_context=True, retry=RETRY)
def issue_batch_item(context: procrastinate.JobContext, item_id: int) -> str:
    """One document of a batch (procrastinate counts attempts from 0)."""
    assert context.job is not None
    return run_item(item_id, attempt=context.job.attempts + 1)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def conninfo(url: str) -> str:
    """libpq's form of a SQLAlchemy URL (postgresql+psycopg://… → postgresql://…)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def requeue_stalled(app: procrastinate.App, stalled_after: float) -> int:
    """Put jobs of workers that stopped sending heartbeats (killed, machine lost) back in the queue."""
    n = 0
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after):
        with contextlib.suppress(Exception):  # another worker re-queued it first
            await app.job_manager.retry_job(job)
            n += 1
            log.warning("re-queued job %s of a worker that stopped (%s)", job.id, job.call_string)
    return n


def run_worker(dep: Installation, concurrency: int = 1) -> None:
    """Run a procrastinate worker for this deployment until SIGINT/SIGTERM (PostgreSQL only)."""
    use_deployment(dep)
    s = dep.settings

    async def main() -> None:
        app = tasks_app.with_connector(procrastinate.PsycopgConnector(conninfo=conninfo(s.effective_database_url)))
        async with app.open_async():

            async def recover() -> None:
                while True:
                    with contextlib.suppress(Exception):
                        await requeue_stalled(app, s.job_stalled_after)
                    await asyncio.sleep(max(1.0, s.job_stalled_after / 3))

            recovery = asyncio.create_task(recover())
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    update_heartbeat_interval=s.job_heartbeat,
                    stalled_worker_timeout=s.job_stalled_after,
                    delete_jobs="successful",
                )
            finally:
                recovery.cancel()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- SQLite runner
class LocalRunner:
    """Runs batch items in one background thread of this process (SQLite: one writer anyway), with retries."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Runtime, int, int]] = []  # (due, n, runtime, item_id, attempt)
        self._n = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, dep: Installation, item_ids: Sequence[int], attempt: int = 1, delay: float = 0.0) -> None:
        rt = runtime_for(dep)
        with self._cond:
            for item_id in item_ids:
                self._n += 1
                heapq.heappush(self._heap, (time.monotonic() + delay, self._n, rt, item_id, attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sealtrail-batches", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                _due, _n, rt, item_id, attempt = heapq.heappop(self._heap)
            try:
                run_item(item_id, attempt, rt)
            except TransientError:
                self.submit(rt.dep, [item_id], attempt + 1, _policy(rt.dep).wait(attempt))
            except Exception:
                log.exception("batch item %s could not be run", item_id)


local_runner = LocalRunner()


def resume_local(dep: Installation) -> int:
    """SQLite: queue again, in this process, every item left open by a previous process (crash or restart)."""
    with dep.engine.connect() as conn:
        ids = [
            int(i)
            for i in conn.execute(
                select(batch_items.c.id)
                .where(batch_items.c.state.in_(("queued", "running")))
                .order_by(batch_items.c.id)
            ).scalars()
        ]
    if ids:
        local_runner.submit(dep, ids)
    return len(ids)


def run_open_items(dep: Installation) -> int:
    """SQLite, in the foreground: run every open item to its end (retrying transient failures); returns how many."""
    rt = runtime_for(dep)
    with dep.engine.connect() as conn:
        ids = list(
            conn.execute(
                select(batch_items.c.id)
                .where(batch_items.c.state.in_(("queued", "running")))
                .order_by(batch_items.c.id)
            ).scalars()
        )
    policy = _policy(dep)
    for item_id in ids:
        attempt = 1
        while True:
            try:
                run_item(int(item_id), attempt, rt)
                break
            except TransientError:
                time.sleep(policy.wait(attempt))
                attempt += 1
    return len(ids)


# ----------------------------------------------------------------------------------------------------- the API
@dataclass(frozen=True)
class Submitted:
    batch_id: str
    doc_ids: list[str]


def submit_batch(
    dep: Installation,
    items: Sequence[tuple[dict[str, Any], schemas.Document]],
    school_code: str,
    created_by: str,
    *,
    run_here: bool = True,
) -> Submitted:
    """Queue checked documents (each with its raw input) as one batch; on PostgreSQL its tasks commit with it.

    On SQLite the batch starts in this process's runner unless ``run_here`` is False (then `sealtrail worker`
    or the next `serve` runs it)."""
    rows = [{"doc_id": new_doc_id(doc), "token": new_token(), "kind": doc.kind, "input": raw} for raw, doc in items]
    return submit_rows(dep, rows, school_code, created_by, run_here=run_here)


def submit_rows(
    dep: Installation, rows: Sequence[dict[str, Any]], school_code: str, created_by: str, *, run_here: bool = True
) -> Submitted:
    """Queue items given as {doc_id, token, kind, input} as one batch (see :func:`submit_batch`).

    A document that already has a finished item (failed or cancelled in an earlier batch) has that item moved
    into this batch and started afresh, so a document is never in two batches' open items."""
    engine: Engine = dep.engine
    now = _now()
    batch_id = secrets.token_hex(16)  # also the capability in the progress page's address
    kinds = sorted({str(r["kind"]) for r in rows})
    values = [
        {
            "batch_id": batch_id, "seq": seq, "doc_id": r["doc_id"], "token": r["token"], "kind": r["kind"],
            "state": "queued", "input": r["input"], "attempts": 0, "updated_at": now,
        }
        for seq, r in enumerate(rows)
    ]  # fmt: skip
    items = batch_items.c
    with engine.begin() as conn:
        conn.execute(
            batches.insert().values(
                id=batch_id, school_code=school_code, kind=kinds[0] if len(kinds) == 1 else "mixed", total=len(rows),
                state="queued", created_by=created_by, created_at=now,
            )
        )  # fmt: skip
        earlier = conn.execute(
            select(items.id, items.batch_id, items.state, items.doc_id).where(
                items.doc_id.in_([v["doc_id"] for v in values])
            )
        ).all()
        if any(e.state not in ("failed", "cancelled") for e in earlier):
            raise ValueError("a document of this batch is already queued or issued in another batch")
        by_doc = {v["doc_id"]: v for v in values}
        for e in earlier:  # moved here, started afresh
            v = by_doc[e.doc_id]
            conn.execute(
                batch_items.update()
                .where(items.id == e.id)
                .values(batch_id=batch_id, seq=v["seq"], state="queued", input=v["input"], attempts=0, error=None,
                        updated_at=now)
            )  # fmt: skip
            conn.execute(batches.update().where(batches.c.id == e.batch_id).values(total=batches.c.total - 1))
        moved = {e.doc_id for e in earlier}
        if len(moved) < len(values):
            conn.execute(batch_items.insert(), [v for v in values if v["doc_id"] not in moved])
        ids = [
            int(i)
            for i in conn.execute(
                select(batch_items.c.id).where(batch_items.c.batch_id == batch_id).order_by(batch_items.c.seq)
            ).scalars()
        ]
        if is_postgres(engine):
            driver = conn.connection.driver_connection  # the psycopg connection inside this very transaction
            args: list[dict[str, Any]] = [{"item_id": i} for i in ids]
            job_ids = issue_batch_item.configure(connection=driver).batch_defer(*args)
            conn.execute(
                batch_items.update().where(batch_items.c.id == bindparam("item")).values(job_id=bindparam("job")),
                [{"item": i, "job": j} for i, j in zip(ids, job_ids, strict=True)],
            )
    if run_here and not is_postgres(engine):
        local_runner.submit(dep, ids)
    return Submitted(batch_id, [str(v["doc_id"]) for v in values])


def cancel_batch(dep: Installation, batch_id: str) -> None:
    """Cancel every item not started yet; items already issued (or being signed right now) stay issued."""
    engine: Engine = dep.engine
    items = batch_items.c
    with engine.begin() as conn:
        conn.execute(select(batches.c.id).where(batches.c.id == batch_id).with_for_update())
        job_ids = [
            j
            for j in conn.execute(
                select(items.job_id).where(items.batch_id == batch_id, items.state == "queued")
            ).scalars()
            if j is not None
        ]
        conn.execute(
            batch_items.update()
            .where(items.batch_id == batch_id, items.state == "queued")
            .values(state="cancelled", error="Đã huỷ / cancelled", updated_at=_now())
        )
        counts = _counts(conn, batch_id)
        if not counts["running"] and counts["cancelled"]:
            conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.state.in_(("queued", "running")))
                .values(state="cancelled", finished_at=_now())
            )
        if is_postgres(engine) and job_ids:
            driver = conn.connection.driver_connection
            for job_id in job_ids:  # queued jobs are dropped; one already taken finds its item cancelled
                with contextlib.suppress(Exception):
                    tasks_app.job_manager.cancel_job_by_id(job_id, delete_job=True, connection=driver)


def batch_progress(dep: Installation, batch_id: str, school_code: str | None = None) -> dict[str, Any] | None:
    """Counts by state, failures with reasons and each document's id; None if absent (or another school's)."""
    engine: Engine = dep.engine
    with engine.connect() as conn:
        batch = conn.execute(select(batches).where(batches.c.id == batch_id)).mappings().first()
        if batch is None or (school_code is not None and batch["school_code"] != school_code):
            return None
        rows = conn.execute(
            select(
                batch_items.c.seq,
                batch_items.c.doc_id,
                batch_items.c.token,
                batch_items.c.state,
                batch_items.c.attempts,
                batch_items.c.error,
            )
            .where(batch_items.c.batch_id == batch_id)
            .order_by(batch_items.c.seq)
        ).all()
        counts = _counts(conn, batch_id)
    base = dep.settings.public_base_url.rstrip("/")
    return {
        "id": batch["id"],
        "page_url": f"/lo/{batch['id']}",
        "school": batch["school_code"],
        "kind": batch["kind"],
        "state": batch["state"],
        "total": batch["total"],
        "counts": counts,
        "created_at": batch["created_at"].isoformat() if batch["created_at"] else None,
        "finished_at": batch["finished_at"].isoformat() if batch["finished_at"] else None,
        "documents": [
            {"seq": r.seq, "id": r.doc_id, "state": r.state, "attempts": r.attempts}
            | ({"url": f"{base}/v/{r.token}"} if r.state == "issued" else {})
            | ({"reason": r.error} if r.error else {})  # for a running item: why its last try failed
            for r in rows
        ],
        "failures": [{"seq": r.seq, "id": r.doc_id, "reason": r.error} for r in rows if r.state == "failed"],
    }
