"""The public read API of the log: checkpoint, tiles, entry bundles and the verifier key (C2SP tlog-tiles)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import Connection

from ledger.store import Ledger, LedgerError
from ledger.tile import TILE_WIDTH, parse_tile_path
from ledger.witness import Witness

IMMUTABLE = "public, max-age=31536000, immutable"


def make_router(get_conn: Callable[[], AbstractContextManager[Connection]], ledger: Ledger, vkey: str) -> APIRouter:
    router = APIRouter(prefix="/log", tags=["public log"])

    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    missing = {"description": "Not found", "content": {"application/json": {}}}

    @router.get("/checkpoint", response_class=Response, responses={200: text, 404: missing})
    def checkpoint() -> Response:
        with get_conn() as conn:
            note = ledger.latest_checkpoint(conn)
        if note is None:
            raise HTTPException(404, "The log has no signed checkpoint yet")
        return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "max-age=5"})

    @router.get("/key", response_class=Response, responses={200: text})
    def key() -> Response:
        return Response(vkey + "\n", media_type="text/plain; charset=utf-8", headers={"Cache-Control": "max-age=3600"})

    binary = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}

    @router.get("/tile/{path:path}", response_class=Response, responses={200: binary, 404: missing})
    def tile(path: str) -> Response:
        try:
            level, n, width = parse_tile_path("tile/" + path)
        except ValueError:
            raise HTTPException(404, "No such tile") from None
        try:
            with get_conn() as conn:
                if level == "entries":
                    data = ledger.read_entry_bundle(conn, n, width)
                else:
                    data = ledger.read_tile(conn, int(level), n, width)
        except LedgerError:
            raise HTTPException(404, "No such tile") from None
        cache = IMMUTABLE if width == TILE_WIDTH else "public, max-age=60"
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})

    return router


def make_witness_router(witness: Witness) -> APIRouter:
    """POST /add-checkpoint (C2SP tlog-witness)."""
    router = APIRouter(tags=["witness"])

    @router.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > 64 * 1024:
            return Response("request too large\n", status_code=413)
        result = witness.add_checkpoint(body)
        return Response(result.body, status_code=result.status, media_type=result.content_type)

    return router
