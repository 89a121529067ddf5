"""What batch jobs use of an installation: ``sealtrail.deployment.Deployment`` is one. Declared here so jobs never
import the shell (the same pattern as ``signer/host.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine

if TYPE_CHECKING:
    from signer.issue import Issuer


class JobSettings(Protocol):
    """The settings batch jobs read (``sealtrail.settings.Settings`` has them)."""

    @property
    def job_max_attempts(self) -> int: ...

    @property
    def job_retry_wait(self) -> float: ...

    @property
    def job_heartbeat(self) -> float: ...

    @property
    def job_stalled_after(self) -> float: ...

    @property
    def effective_database_url(self) -> str: ...

    @property
    def public_base_url(self) -> str: ...


class Installation(Protocol):
    """One installation's database, settings and issuer, as batch jobs use them."""

    @property
    def settings(self) -> JobSettings: ...

    @property
    def engine(self) -> Engine: ...

    def make_issuer(self) -> Issuer: ...
