"""The one table from domain errors to HTTP statuses.

Domain code raises its own exceptions (never ``HTTPException``) with a message for a person, Vietnamese then
English; a route that has nothing to add lets them through, and the handlers installed here answer
``{"detail": message}`` with the status below (the same shape FastAPI gives an ``HTTPException``). The first
matching row wins, so subclasses come before their bases. Pages that show the message inside a form catch the
error themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from accounts.service import AccountError
from signer.credentials import DocumentNotFoundError, ExportError
from signer.translation import TranslationError
from workflow.signing import SigningFlowError
from workflow.states import ConflictError, NotFoundError, WorkflowError

Status = int | Callable[[Exception], int]

STATUS: list[tuple[type[Exception], Status]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (WorkflowError, 422),
    (SigningFlowError, lambda exc: int(getattr(exc, "status", 400))),
    (TranslationError, lambda exc: int(getattr(exc, "status_code", 409))),
    (DocumentNotFoundError, 404),
    (ExportError, 409),
    (AccountError, 422),
]


def status_of(exc: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status(exc) if callable(status) else status
    return 500


def install(app: FastAPI) -> None:
    """Answer every domain error in the table with its status and message."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    for kind, _status in STATUS:
        app.add_exception_handler(kind, handle)
