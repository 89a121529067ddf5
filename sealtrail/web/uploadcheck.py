"""The web side of bounded upload checks: the pool of isolated check workers for this app, and the request glue
that stops a check when its client hangs up.

Every public surface that checks a stranger's file (``POST /api/v1/verify``, the upload page ``/kiem-tra``, the ZIP
bulk check) goes through :class:`UploadChecker`: the signatures are checked in a pre-started worker process under
the CPU, memory and wall-clock limits from settings (``SEALTRAIL_VERIFY_*``, see verifier.isolation), and a client
that disconnects stops the work (the worker is killed and replaced), for a single file and for a ZIP half-way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from sealtrail.deployment import Deployment
from verifier.checking import UploadCheck, check_upload
from verifier.isolation import CheckPool, Limits, Stopped, shared_pool

T = TypeVar("T")
POLL = 0.2  # seconds between looks at whether the client is still there


def limits_of(dep: Deployment) -> Limits:
    s = dep.settings
    return Limits(
        cpu_seconds=s.verify_cpu_seconds,
        memory_bytes=s.verify_memory_mb * 1024 * 1024,
        wall_seconds=s.verify_wall_seconds,
        workers=s.verify_workers,
    )


class UploadChecker:
    """One app's access to the check workers (shared by every app in the process with the same limits)."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.limits = limits_of(dep)

    @property
    def pool(self) -> CheckPool:
        return shared_pool(self.limits)

    def start(self) -> None:
        """Start the workers now rather than on the first upload."""
        _ = self.pool

    def check(self, data: bytes, cancelled: Callable[[], bool] | None = None) -> UploadCheck:
        return check_upload(self.dep, data, pool=self.pool, cancelled=cancelled)

    async def check_request(self, request: Request, data: bytes) -> UploadCheck | None:
        """The check of one uploaded file, or None when the client hung up (the work was stopped)."""
        cancel = threading.Event()
        try:
            return await until_disconnected(request, cancel, run_in_threadpool(self.check, data, cancel.is_set))
        except Stopped as exc:
            if exc.cause != "cancelled":
                raise
            return None


async def until_disconnected(request: Request, cancel: threading.Event, work: Awaitable[T]) -> T:
    """Await ``work`` while watching the client: when it disconnects, ``cancel`` is set (the work's own check of
    it stops the worker, which makes ``work`` end with Stopped("cancelled"))."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL)
            if done:
                return task.result()
            if not cancel.is_set() and await request.is_disconnected():
                cancel.set()
    finally:
        if not task.done():  # this coroutine was cancelled itself: stop the work too
            cancel.set()


async def stream_until_disconnected(lines: Iterator[bytes], cancel: threading.Event) -> AsyncIterator[bytes]:
    """A sync stream of lines (checked one by one in a thread) as an async one; when the response is cancelled
    because the client left, ``cancel`` is set so the check in progress stops and no further item starts."""
    end = object()

    def step() -> Any:
        return next(lines, end)

    try:
        while not cancel.is_set():
            task = asyncio.ensure_future(run_in_threadpool(step))
            await asyncio.wait({task})  # a cancellation lands here at once, not when the item is done
            try:
                line = task.result()
            except Stopped:
                return
            if line is end:
                return
            yield line
    finally:
        cancel.set()  # the client left (or the stream ended): the item in progress stops, no other starts
