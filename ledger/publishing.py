"""Publishing the log: sign a checkpoint, have the configured witnesses cosign it (with a consistency proof from
the size each last saw), keep the published note outside the database, check a database against it (a restored
backup must not fork the log), and a thread that publishes a new checkpoint whenever the log has grown."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from sqlalchemy import Engine

from ledger.note import open_checkpoint
from ledger.store import Ledger, LedgerError, LedgerForkError
from ledger.witness import CosignatureVerifier, add_checkpoint_body

log = logging.getLogger(__name__)


def _witness_state(path: Path) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def cosign(engine: Engine, ledger: Ledger, note: bytes, witnesses: Sequence[str], state_path: Path) -> list[str]:
    """Submit the checkpoint to each witness ("URL VKEY"); return the cosignature lines that came back. The size
    each witness last cosigned is kept in ``state_path``."""
    checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
    sizes = _witness_state(state_path)
    lines: list[str] = []
    for spec in witnesses:
        url, vkey = spec.split()
        verifier = CosignatureVerifier.from_vkey(vkey)
        old = sizes.get(vkey, 0)
        for _attempt in range(2):
            with engine.connect() as conn:
                proof = ledger.prove_consistency(conn, old, checkpoint.size) if 0 < old < checkpoint.size else []
            try:
                response = httpx.post(
                    url.rstrip("/") + "/add-checkpoint", content=add_checkpoint_body(old, proof, note), timeout=10
                )
            except httpx.HTTPError as exc:
                log.warning("witness %s unreachable: %s", url, exc)
                break
            if response.status_code == 409:
                old = int(response.text.strip())
                if old > checkpoint.size:
                    raise LedgerForkError(f"witness {url} has seen {old} entries, more than this log has")
                continue
            if response.status_code == 200:
                got = [ln for ln in response.text.splitlines() if ln.startswith(f"\u2014 {verifier.name} ")]
                lines.extend(ln + "\n" for ln in got)
                sizes[vkey] = checkpoint.size
            else:
                log.warning("witness %s refused the checkpoint: %s %s", url, response.status_code, response.text[:200])
            break
    state_path.write_text(json.dumps(sizes))
    return lines


def publish(
    engine: Engine, ledger: Ledger, published_path: Path, witnesses: Sequence[str] = (), quorum: int = 0
) -> bytes:
    """Sign a checkpoint of the log, collect witness cosignatures, and remember it in ``published_path``."""
    with engine.begin() as conn:
        note = ledger.checkpoint(conn)
    if witnesses:
        lines = cosign(engine, ledger, note, witnesses, published_path.parent / "witness-sizes.json")
        if len(lines) < quorum:
            raise LedgerError(f"only {len(lines)} of {quorum} required witnesses cosigned; not publishing")
        if lines:
            with engine.begin() as conn:
                note = ledger.add_cosignatures(conn, note, lines)
    tmp = published_path.with_suffix(".tmp")
    tmp.write_bytes(note)
    tmp.replace(published_path)
    return note


def check_not_forked(engine: Engine, ledger: Ledger, published_path: Path) -> None:
    """Raise LedgerForkError when the database's log contradicts the last checkpoint published."""
    if not published_path.exists():
        return
    with engine.connect() as conn:
        ledger.check_consistent_with(conn, published_path.read_bytes())


def grew(engine: Engine, ledger: Ledger) -> bool:
    """True when the log has entries its latest signed checkpoint does not cover."""
    with engine.connect() as conn:
        size = ledger.size(conn)
        latest = ledger.latest_checkpoint(conn)
    published = open_checkpoint(latest, ledger.verifier, ledger.origin).size if latest else -1
    return size != published


class Checkpointer:
    """Calls ``publish`` every ``interval`` seconds when the log has grown (a background thread)."""

    def __init__(self, engine: Engine, ledger: Ledger, publish: Callable[[], object], interval: float) -> None:
        self.engine, self.ledger, self.publish, self.interval = engine, ledger, publish, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> bool:
        if not grew(self.engine, self.ledger):
            return False
        self.publish()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("could not publish a checkpoint; will retry")
