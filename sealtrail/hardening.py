"""Web hardening shared by every page: no framing (clickjacking), and client addresses taken from a proxy's
``X-Forwarded-For`` only when the connection comes from a proxy listed in ``SEALTRAIL_TRUSTED_PROXIES``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = b"frame-ancestors 'none'"


class FrameGuard:
    """ASGI middleware: every HTTP answer says it may not be framed (``X-Frame-Options: DENY`` and CSP
    ``frame-ancestors 'none'``, appended to a page's own policy when it has one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-frame-options"]
                headers.append((b"x-frame-options", b"DENY"))
                csp = [i for i, (k, _) in enumerate(headers) if k.lower() == b"content-security-policy"]
                if not csp:
                    headers.append((b"content-security-policy", FRAME_ANCESTORS))
                for i in csp:
                    name, value = headers[i]
                    if b"frame-ancestors" not in value:
                        headers[i] = (name, value.rstrip(b"; ") + b"; " + FRAME_ANCESTORS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, guarded)
