"""Sign-in forms as banks guard them (issue 22): wrong answers are counted in the database (verifier.gate) per
(account, address) and per address, never per account alone, so an attacker slows only themselves and cannot lock
the owner out from the owner's own address; only *failures* count, so a whole class signing in behind one school
NAT is not throttled; and every refusal reads the same whether the username exists or not. A sign-in form posted
from another site is refused (login CSRF): the browser's ``Sec-Fetch-Site`` / ``Origin`` must say same-origin."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from verifier.gate import AttemptGate, Backoff

PER_ACCOUNT_AND_ADDRESS = Backoff(free=5, first=timedelta(minutes=1), ceiling=timedelta(minutes=15))
PER_ADDRESS = Backoff(free=50, first=timedelta(minutes=1), ceiling=timedelta(minutes=15))
LOCKED = (
    "Quá nhiều lần đăng nhập sai; vui lòng thử lại sau {minutes} phút / too many failed sign-ins, please try again "
    "in {minutes} minutes"
)


def refuse_cross_site(request: Request) -> None:
    """403 for a sign-in POST another site made the browser send (a login CSRF plants the attacker's account).
    Browsers say where a request comes from in ``Sec-Fetch-Site``; older ones only in ``Origin`` (which is "null"
    on our pages, whose referrer policy is no-referrer, so "null" is believed only beside Sec-Fetch-Site)."""
    refusal = HTTPException(403, "Biểu mẫu đăng nhập gửi từ trang khác / a sign-in form posted from another site")
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise refusal
        return
    origin = request.headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")):
        raise refusal


CODES_PER_ADDRESS = Backoff(free=20, first=timedelta(minutes=1), ceiling=timedelta(minutes=15))
"""One-time codes have 72 bits: no account to protect, only guessing to slow; a school NAT may mistype a few."""


def _subjects(kind: str, username: str, ip: str) -> list[tuple[str, str, Backoff]]:
    if kind == "code":
        return [("code-ip", ip or "-", CODES_PER_ADDRESS)]
    who = hashlib.sha256(f"{kind}\0{username.strip().casefold()}\0{ip}".encode()).hexdigest()
    return [(f"{kind}-acct", who, PER_ACCOUNT_AND_ADDRESS), (f"{kind}-ip", ip or "-", PER_ADDRESS)]


def guarded(gate: AttemptGate, kind: str, username: str, ip: str, attempt: Callable[[], bool]) -> int:
    """Run ``attempt`` unless this (account, address) or this address is locked; count its outcome. Returns 0 when
    it ran, else the seconds to wait (``attempt`` was not run)."""
    subjects = _subjects(kind, username, ip)
    wait = max(gate.retry_after(scope, subject) for scope, subject, _ in subjects)
    if wait:
        return wait
    ok = attempt()
    for scope, subject, backoff in subjects:
        gate.attempt(scope, subject, lambda: ok, backoff=backoff)
    return 0


def locked_message(wait: int) -> str:
    return LOCKED.format(minutes=max(1, -(-wait // 60)))
