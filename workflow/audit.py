"""The audit trail: one row per security-relevant or workflow action (who, what, where from), and for the actions
that change who may sign or what a key may do, also a ``key`` entry in the public log, in the same transaction,
carrying only a keyed commitment to the audit row (HMAC under a key derived from the installation secret: no
personal data in the log, and nothing a list of user names could reverse).

The web layer wraps this (``sealtrail.web.deps.AccountsContext``) and passes the caller's address; jobs and the CLI
use it as it is."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from accounts import service
from accounts.models import AuditEvent, utcnow
from accounts.permissions import Actor
from ledger.entry import Entry
from ledger.store import Ledger

LEDGER_ACTIONS = {  # also logged publicly
    "role.grant", "role.revoke", "apikey.create", "apikey.revoke", "key.change", "password.reset", "totp.reset",
    "parent.link", "parent.unlink",
}  # fmt: skip


class _Installation(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def commitment_key(self) -> bytes:
        """The key of the log's audit commitments, derived from the installation secret (``dep.lookup_key``)."""
        return service.derive_key(self.dep.lookup_key, "audit-commitment")

    @property
    def ledger(self) -> Ledger: ...


class AuditTrail:
    """Writes audit rows for one installation (``dep``: a ``sealtrail.deployment.Deployment`` or the like)."""

    def __init__(self, dep: Any) -> None:
        self.dep = dep
        self.engine: Engine = dep.engine
        self._ledger: Ledger | None = None

    @property
    def commitment_key(self) -> bytes:
        """The key of the log's audit commitments, derived from the installation secret (``dep.lookup_key``)."""
        return service.derive_key(self.dep.lookup_key, "audit-commitment")

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = self.dep.ledger
        return self._ledger

    def record(
        self,
        client: str | None,
        actor: Actor | str,
        action: str,
        *,
        org: str | None = None,
        target: str = "",
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Write one audit row (``client``: the caller's address, when there is one); security-relevant actions
        also append a ``key`` entry to the public log in the same transaction."""
        name = actor if isinstance(actor, str) else actor.name
        row = service.audit_row(
            name, action, org_code=org, target=target, outcome=outcome, ip=client or "", detail=detail
        )
        if action in LEDGER_ACTIONS and outcome == "ok":
            row.at = utcnow().replace(microsecond=0)
            entry = Entry(
                type="key",
                doc_id=f"{action}:{org or '-'}",
                pdf_sha256="",
                xml_sha256=service.audit_commitment(self.commitment_key, row),
                signer_cert_sha256="",
                time=row.at,
            )
            with self.engine.begin() as conn:
                (row.leaf_index,) = self.ledger.append(conn, [entry])
                with Session(bind=conn) as session:
                    session.add(row)
                    session.commit()
                    session.refresh(row)
                    session.expunge(row)
            return row
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            session.expunge(row)
        return row
