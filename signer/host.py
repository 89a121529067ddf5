"""What the signer's operations use of an installation: ``sealtrail.deployment.Deployment`` is one (the composition
root builds it from settings; tests build theirs the same way). Declared here so signer never imports the shell."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from asn1crypto import x509
from sqlalchemy import Engine

from hsm_adapters.base import KeyBackend
from ledger.store import Ledger
from signer.storage import Blobs

if TYPE_CHECKING:
    from signer.issue import Issuer


class Installation(Protocol):
    """One installation's database, stored files, keys, trust anchors and log, as the signer uses them."""

    settings: Any  # sealtrail.settings.Settings: public_base_url, resolved_data_dir

    @property
    def engine(self) -> Engine: ...

    @property
    def blobs(self) -> Blobs: ...

    @property
    def signing_keys(self) -> Mapping[str, KeyBackend]: ...

    @property
    def trust_roots(self) -> list[x509.Certificate]: ...

    @property
    def intermediates(self) -> list[x509.Certificate]: ...

    @property
    def timestamp_urls(self) -> list[str]: ...

    @property
    def lookup_key(self) -> bytes: ...

    @property
    def ledger(self) -> Ledger: ...

    def make_issuer(self) -> Issuer: ...

    def publish_checkpoint(self) -> bytes: ...
