"""Per-client rate limits for the public pages: a token bucket per client address, kept in memory.

Guessing QR tokens is the attack this slows down (a token has 128 random bits, so the limit is a second line
of defence and a guard against scraping). Behind a reverse proxy, list it in ``SEALTRAIL_TRUSTED_PROXIES`` so the
client address is the visitor's, not the proxy's; X-Forwarded-For from any other peer is ignored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from fastapi import HTTPException, Request


class RateLimiter:
    """``rate`` requests per second on average, bursts of up to ``burst``; at most ``max_clients`` tracked."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one will."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1 - tokens) / self.rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)  # forget the least recently seen client
            return wait

    def __call__(self, request: Request) -> None:
        """A FastAPI dependency: 429 with Retry-After when the client is over its limit."""
        client = request.client.host if request.client else "unknown"
        wait = self.allow(client)
        if wait > 0:
            raise HTTPException(
                429,
                "Quá nhiều yêu cầu, vui lòng thử lại sau ít phút / Too many requests, please try again shortly",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
