"""Attempt counters with backoff for the public privacy gates, kept in the database so they hold across processes.

Two gates use them:

* the QR page's date-of-birth form (scope ``dob``, one counter per document): a handful of free tries, then each
  wrong answer locks the document's form for a time that doubles up to a ceiling. While locked, answers are not
  even compared (a right date is refused too, so an attacker learns nothing from a guess made during the lock)
  and do not extend the lock, so the holder can always get in once it ends. A right answer clears the counter.
* the bulk CSV look-up (scope ``lookup``, one counter per keyed hash of a document number): rows that do not match
  count against the number, wherever they come from.

The counter is read and written in one transaction holding the row (``FOR UPDATE`` on PostgreSQL; on SQLite a
write first takes the database's write lock), so two processes cannot both spend the last free try.

A second factor stronger than a birth date is the *details code*: 60 bits derived with HMAC from the installation
secret and the document id (``details_code``). It is given to the holder (the student portal shows it), is not
guessable, and opens the details even while the birth-date form is locked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, select, update

metadata = MetaData()
attempts = Table(
    "public_attempts",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("subject", String(128), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("last_failure", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Backoff:
    """``free`` wrong answers cost nothing; the next locks for ``first``, doubling each time up to ``ceiling``. A
    wrong answer more than ``forget_after`` after the previous one starts the count afresh."""

    free: int = 5
    first: timedelta = timedelta(minutes=1)
    ceiling: timedelta = timedelta(hours=4)
    forget_after: timedelta = timedelta(days=1)

    def lock_for(self, failures: int) -> timedelta | None:
        if failures < self.free:
            return None
        doublings = min(failures - self.free, 30)
        return min(self.first * (2**doublings), self.ceiling)


@dataclass(frozen=True)
class Outcome:
    allowed: bool  # the answer was right (and the gate was open)
    locked: bool  # the gate was locked: the answer was not compared
    retry_after: int = 0  # seconds until the next answer will be compared (0: now)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class AttemptGate:
    """Counts wrong answers per (scope, subject) in ``public_attempts`` and applies ``backoff``."""

    def __init__(
        self,
        engine: Engine,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.backoff = backoff or Backoff()
        self.clock = clock

    def _ensure_row(self, scope: str, subject: str) -> None:
        values = {"scope": scope, "subject": subject, "failures": 0}
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(pg_insert(attempts).values(**values).on_conflict_do_nothing())
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                conn.execute(sqlite_insert(attempts).values(**values).on_conflict_do_nothing())

    def retry_after(self, scope: str, subject: str) -> int:
        """Seconds until the gate compares answers again (0 when it is open); reads only."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(attempts.c.locked_until).where(attempts.c.scope == scope, attempts.c.subject == subject)
            ).first()
        until = _aware(row[0]) if row else None
        now = self.clock()
        return max(1, int((until - now).total_seconds() + 0.999)) if until and until > now else 0

    def attempt(
        self, scope: str, subject: str, check: Callable[[], bool], *, backoff: Backoff | None = None
    ) -> Outcome:
        """Compare an answer (``check()``) unless the gate is locked, and count it; one transaction per answer.
        ``backoff`` overrides the gate's own for this scope."""
        policy = backoff or self.backoff
        self._ensure_row(scope, subject)
        key = (attempts.c.scope == scope) & (attempts.c.subject == subject)
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":  # take the write lock before reading
                conn.execute(update(attempts).where(key).values(failures=attempts.c.failures))
                row = conn.execute(select(attempts).where(key)).one()
            else:
                row = conn.execute(select(attempts).where(key).with_for_update()).one()
            now = self.clock()
            until = _aware(row.locked_until)
            if until is not None and until > now:
                return Outcome(False, True, max(1, int((until - now).total_seconds() + 0.999)))
            if check():
                conn.execute(update(attempts).where(key).values(failures=0, locked_until=None))
                return Outcome(True, False)
            last = _aware(row.last_failure)
            failures = row.failures
            if last is not None and now - last > policy.forget_after:
                failures = 0
            failures += 1
            lock = policy.lock_for(failures)
            conn.execute(
                update(attempts)
                .where(key)
                .values(failures=failures, last_failure=now, locked_until=now + lock if lock else None)
            )
            return Outcome(False, False, int(lock.total_seconds()) if lock else 0)


def details_code(secret: bytes, doc_id: str) -> str:
    """The holder's details code for a document: 12 base32 characters (60 bits) in three groups, e.g. ABCD-EFGH-JKLM."""
    mac = hmac.new(secret, b"details-code\0" + doc_id.encode(), hashlib.sha256).digest()
    text = base64.b32encode(mac).decode()[:12]
    return "-".join(text[i : i + 4] for i in range(0, 12, 4))


def code_matches(secret: bytes, doc_id: str, given: str) -> bool:
    """``given`` is the document's details code (case, spaces and dashes ignored; 0/1/8 read as O/I/B)."""
    cleaned = "".join(given.upper().split()).replace("-", "").translate(str.maketrans("018", "OIB"))
    expected = details_code(secret, doc_id).replace("-", "")
    return len(cleaned) == len(expected) and hmac.compare_digest(cleaned.encode(), expected.encode())
