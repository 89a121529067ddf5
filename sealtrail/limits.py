"""Request body limits enforced while the body streams in, before FastAPI's form parser spools it to disk.

``read_upload`` in the handlers checks the size too, but only after Starlette has parsed the whole multipart body
into a temporary file: without this middleware a 10 GB upload would be written out in full before being refused.
Here a declared Content-Length over the limit is refused at once (413) without reading the body, and a chunked
body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around the file


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: ``limits`` is a list of (path prefix, max bytes), first match wins; ``default`` otherwise."""

    def __init__(self, app: ASGIApp, limits: Sequence[tuple[str, int]], default: int) -> None:
        self.app = app
        self.limits = list(limits)
        self.default = default

    def _limit(self, path: str) -> int:
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        seen = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app answers the aborted body (FastAPI says 400 "error parsing the body"): say 413
                return
            started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    mb = limit / (1024 * 1024)
    body: dict[str, Any] = {
        "detail": f"Tệp quá lớn (tối đa {mb:.0f} MB) / The request body is too large ({mb:.0f} MB at most)"
    }
    data = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                        (b"connection", b"close")],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": data})
