"""Checking untrusted uploads in worker processes, under CPU-time, memory and wall-clock limits.

Every public upload check (the API, the upload page, the ZIP bulk check) parses a file a stranger sent with
libraries (pyHanko, lxml, signxml, poppler) that were not written to bound their work: a crafted PDF can make a
parser loop, recurse or allocate for minutes. So the signature check runs in a small pool of pre-started worker
processes (started once through a fork server that has already imported the verifier, so a genuine document pays
neither a fork nor an import per check), each under

* ``RLIMIT_CPU``: the worker's soft CPU limit is moved to "CPU used so far + the budget" before each check, so an
  overrun ends the worker with SIGXCPU (even inside C code);
* ``RLIMIT_AS``: its address space is capped, so an allocation bomb raises MemoryError (or kills the worker);
* a wall-clock guard in the parent, which kills the worker's whole process group (pdftotext included);
* cancellation: the caller's ``cancelled()`` (the HTTP client hung up) kills the worker the same way.

A stopped worker is replaced at once; its check answers :class:`Stopped` with the cause, which the caller turns
into "indeterminate: too complex to check here". Nothing here touches the database: the register and the log are
consulted by the caller, in its own process, before and after.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import logging
import math
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection, wait
from typing import Any

from prometheus_client import Counter

from errors import SealTrailError
from verifier.pdf import PdfReport, Reason
from verifier.xml import XmlReport, looks_like_xml

log = logging.getLogger("sealtrail.verify")

R_TOO_COMPLEX = (
    "TOO_COMPLEX",
    "Tệp quá phức tạp để kiểm tra tại đây: việc kiểm tra vượt quá giới hạn thời gian hoặc bộ nhớ của dịch vụ (hoặc "
    "không hoàn thành) và đã bị dừng; chưa xác định được",
    "Too complex to check here: the check went past this service's time or memory limits (or did not complete) "
    "and was stopped; the file cannot be confirmed",
)
R_BUSY = (
    "TRY_LATER",
    "Dịch vụ kiểm tra đang bận; hãy thử lại sau ít phút",
    "The checking service is busy; try again in a few minutes",
)
CHECKS = Counter("sealtrail_verify_checks", "Upload checks handed to an isolated worker")
STOPPED = Counter(
    "sealtrail_verify_stopped", "Upload checks stopped (cpu, memory, wall, crash, cancelled, busy)", ["cause"]
)
RECYCLE_AFTER = 500  # checks per worker before it is replaced (bounds heap growth from fragmentation)
EXIT_MEMORY = 86  # a worker's exit code after a MemoryError
START_TIMEOUT = 60.0  # seconds a new worker may take to report ready (the fork server imports once)


@dataclass(frozen=True)
class Limits:
    """The bounds of one check. ``cpu_seconds`` is whole seconds (RLIMIT_CPU's unit)."""

    cpu_seconds: int = 10
    memory_bytes: int = 512 * 1024 * 1024
    wall_seconds: float = 20.0
    workers: int = 2


@dataclass(frozen=True)
class Trust:
    """What a verifier is built from, as DER (sent to the workers, which cache one verifier per distinct list)."""

    roots: tuple[bytes, ...]
    others: tuple[bytes, ...] = ()

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for part in (*self.roots, b"--", *self.others):
            h.update(hashlib.sha256(part).digest())
        return h.hexdigest()


@dataclass
class Checked:
    """A worker's answer: the file's format, its signature report and the identity its signed data claims."""

    format: str  # "pdf" or "xml"
    report: Any  # PdfReport or XmlReport
    claimed: tuple[str, str, str] | None = None  # (kind, number, issuer code) from the signed data, if readable


class Stopped(SealTrailError):
    """The check was stopped: ``cause`` is "cpu", "memory", "wall", "crash", "cancelled" or "busy" (only "busy", every
    worker taken, is transient: the same file is too complex again)."""

    def __init__(self, cause: str, pid: int | None = None) -> None:
        super().__init__(cause, transient=cause == "busy")
        self.cause = cause
        self.pid = pid


def stopped_report(fmt: str, stopped: Stopped) -> PdfReport | XmlReport:
    """What a stopped check answers: indeterminate, never valid, with one plain reason."""
    reason = Reason(*(R_BUSY if stopped.cause == "busy" else R_TOO_COMPLEX))
    return XmlReport("indeterminate", [reason], []) if fmt == "xml" else PdfReport("indeterminate", [reason], [])


# --- the worker process ------------------------------------------------------------------------------------------


def claimed_identity(report: Any) -> tuple[str, str, str] | None:
    """(kind, number, issuer code) of the document the signed data describes, or None when it is not readable."""
    data = getattr(report, "data", None)
    if not data:
        return None
    try:
        from registry.lookup import document_number
        from schemas.xml import from_xml

        doc = from_xml(data)
        number = document_number(doc)
        school = getattr(doc, "school", None) or getattr(doc, "issuer", None)
        code = str(getattr(school, "code", "") or "")
        return (str(doc.kind), number, code) if number else None
    except Exception:  # not a document we can read back: no identity to compare, never an error
        return None


def _check(verifiers: dict[str, Any], job: dict[str, Any]) -> Checked:
    from verifier.pdf import PdfVerifier
    from verifier.xml import XmlVerifier

    trust: Trust = job["trust"]
    key = trust.key
    if key not in verifiers:
        from asn1crypto import x509

        roots = [x509.Certificate.load(d) for d in trust.roots]
        others = [x509.Certificate.load(d) for d in trust.others]
        if len(verifiers) >= 8:
            verifiers.clear()
        verifiers[key] = (PdfVerifier(roots, others), XmlVerifier(roots, others))
    pdf_verifier, xml_verifier = verifiers[key]
    data: bytes = job["data"]
    if looks_like_xml(data):
        report = xml_verifier.verify(data)
        fmt = "xml"
    else:
        report = pdf_verifier.verify(data, at=job.get("at"), compare_pages=job.get("compare_pages", True))
        fmt = "pdf"
    # The identity the signed data claims matters only for a file the register does not know by its hash (the
    # caller says so with compare_pages): is it an altered copy of an issued document, or one issued elsewhere?
    wanted = job.get("compare_pages", True) and report.verdict != "invalid"
    claimed = claimed_identity(report) if wanted else None
    return Checked(fmt, _plain(report), claimed)


def _plain(value: Any) -> Any:
    """A report made of plain values only (a library's str subclass or ASN.1 value becomes a str), so it crosses
    the process boundary whatever a library left in it."""
    if value is None or type(value) in (str, int, float, bool, bytes, datetime):
        return value
    if isinstance(value, Reason):
        return Reason(str(value.code), str(value.vi), str(value.en))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            setattr(value, f.name, _plain(getattr(value, f.name)))
        return value
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, datetime):
        return datetime.fromisoformat(value.isoformat())
    return str(value)


def _limit_cpu(budget: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used) + budget
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _serve(conn: Connection, limits: Limits) -> None:
    """A worker's life: limits set once, then one check per message until the pipe closes."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its own process group: a kill takes pdftotext (its child) along
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise write a core file
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    for noisy in ("pyhanko", "pyhanko_certvalidator", "fontTools"):  # hostile files make them log tracebacks
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    verifiers: dict[str, Any] = {}
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        _limit_cpu(limits.cpu_seconds)
        out_of_memory = False
        try:
            answer: tuple[str, Any] = ("ok", _check(verifiers, job))
        except MemoryError:
            out_of_memory = True
        job = None
        if out_of_memory:  # the heap may be in any state: say so by the exit code, the parent starts a new worker
            os._exit(EXIT_MEMORY)
        try:
            conn.send(answer)
        except MemoryError:
            os._exit(EXIT_MEMORY)


# --- the parent side ----------------------------------------------------------------------------------------------


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["verifier.isolation", "verifier.pdf", "verifier.xml", "schemas.xml"])
    return ctx


class _Worker:
    def __init__(self, ctx: Any, limits: Limits) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(child, limits), daemon=True, name="sealtrail-check")
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.checks = 0
        if not parent.poll(START_TIMEOUT):
            self.kill()
            raise RuntimeError("a verification worker did not start")
        _, self.pid = parent.recv()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if self.process.pid is not None:
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(5)
        with contextlib.suppress(OSError):
            self.conn.close()


class CheckPool:
    """A fixed number of pre-started workers; ``check`` borrows one, or waits (up to the wall limit) for one."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._ctx = _context()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.stopped: dict[str, int] = {}  # cause → count, for /metrics and tests
        self.last_stopped_pid: int | None = None
        for _ in range(max(1, limits.workers)):
            self._idle.put(_Worker(self._ctx, limits))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        if not self._closed:
            self._idle.put(_Worker(self._ctx, self.limits))

    def _stop(self, worker: _Worker, cause: str) -> Stopped:
        STOPPED.labels(cause).inc()
        with self._lock:
            self.stopped[cause] = self.stopped.get(cause, 0) + 1
            self.last_stopped_pid = worker.pid
        log.warning("verification stopped (%s); worker %s replaced", cause, worker.pid, extra={"cause": cause})
        self._replace(worker)
        return Stopped(cause, worker.pid)

    def check(
        self,
        data: bytes,
        trust: Trust,
        *,
        at: datetime | None = None,
        compare_pages: bool = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> Checked:
        """The file's format and signature report, from a worker; raises Stopped when it had to be stopped."""
        deadline = time.monotonic() + self.limits.wall_seconds
        worker = self._borrow(deadline, cancelled)
        CHECKS.inc()
        try:
            worker.conn.send({"data": data, "trust": trust, "at": at, "compare_pages": compare_pages})
        except (OSError, ValueError):
            raise self._stop(worker, "crash") from None
        while True:
            ready = wait([worker.conn, worker.process.sentinel], timeout=0.1)
            if worker.conn in ready:
                try:
                    status, result = worker.conn.recv()
                except (EOFError, OSError):
                    ready = [worker.process.sentinel]
                else:
                    if status != "ok":
                        raise self._stop(worker, status)
                    worker.checks += 1
                    if worker.checks >= RECYCLE_AFTER:
                        self._replace(worker)
                    else:
                        self._idle.put(worker)
                    return result  # type: ignore[no-any-return]
            if worker.process.sentinel in ready:
                worker.process.join(1)
                code = worker.process.exitcode
                causes = {-signal.SIGXCPU: "cpu", -signal.SIGKILL: "cpu", EXIT_MEMORY: "memory"}
                cause = causes.get(code or 0, "crash")
                raise self._stop(worker, cause)
            if cancelled is not None and cancelled():
                raise self._stop(worker, "cancelled")
            if time.monotonic() > deadline:
                raise self._stop(worker, "wall")

    def _borrow(self, deadline: float, cancelled: Callable[[], bool] | None) -> _Worker:
        while True:
            try:
                return self._idle.get(timeout=0.1)
            except queue.Empty:
                pass
            if self._closed:
                raise Stopped("busy")
            if cancelled is not None and cancelled():
                raise Stopped("cancelled")
            if time.monotonic() > deadline:
                STOPPED.labels("busy").inc()
                with self._lock:
                    self.stopped["busy"] = self.stopped.get("busy", 0) + 1
                raise Stopped("busy")

    def worker_pids(self) -> list[int]:
        """The idle workers' process ids (for tests and operations)."""
        return [w.pid for w in list(self._idle.queue)]

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


_pools: dict[Limits, CheckPool] = {}
_pools_lock = threading.Lock()


def shared_pool(limits: Limits) -> CheckPool:
    """One pool per distinct set of limits in this process (every app and test in a process shares it)."""
    with _pools_lock:
        pool = _pools.get(limits)
        if pool is None or pool._closed:
            pool = _pools[limits] = CheckPool(limits)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_pools.values()):
        pool.close()
