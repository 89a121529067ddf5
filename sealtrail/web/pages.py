"""What every HTML page shares: the templates, the security headers, and the session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from accounts import service
from accounts.permissions import Actor
from sealtrail.web.deps import AccountsContext
from workflow.states import STATE_TEXT

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html", "j2"])
)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
KINDS = {"transcript": "Học bạ", "diploma": "Văn bằng", "copy": "Bản sao"}
STATE_TEXTS = {s.value: t for s, t in STATE_TEXT.items()}
ItemIds = Annotated[list[str], Form()]


def page(name: str, request: Request, actor: Actor | None, status: int = 200, **values: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(
        actor=actor, csrf=actor.csrf_token if actor else "", kinds=KINDS, state_text=STATE_TEXTS, **values
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def set_session_cookie(ctx: AccountsContext, response: Response, token: str, path: str = "/") -> None:
    response.set_cookie(
        ctx.cookie_name,
        token,
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        path=path,
        secure=ctx.secure_cookie,
        httponly=True,
        samesite="strict",
    )
