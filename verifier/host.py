"""What the verifier's operations use of an installation: ``sealtrail.deployment.Deployment`` is one. Declared
here so the verifier never imports the shell (nor the signer: it only reads stored files and the register)."""

from __future__ import annotations

from typing import Any, Protocol

from asn1crypto import x509
from sqlalchemy import Engine

from ledger.store import Ledger
from registry.records import DocumentRecord
from verifier.pdf import PdfVerifier
from verifier.xml import XmlVerifier


class StoredFiles(Protocol):
    def get(self, sha256: str, ext: str) -> bytes: ...


class Installation(Protocol):
    """One installation's register, log, stored files and trust anchors, as the verifier reads them."""

    settings: Any  # sealtrail.settings.Settings: public_base_url, resolved_data_dir, public_proof_cache

    @property
    def engine(self) -> Engine: ...

    @property
    def blobs(self) -> StoredFiles: ...

    @property
    def trust_roots(self) -> list[x509.Certificate]: ...

    @property
    def intermediates(self) -> list[x509.Certificate]: ...

    @property
    def pdf_verifier(self) -> PdfVerifier: ...

    @property
    def xml_verifier(self) -> XmlVerifier: ...

    @property
    def lookup_key(self) -> bytes: ...

    @property
    def ledger(self) -> Ledger: ...

    def prove_record(self, record: DocumentRecord) -> bool: ...

    def signed_status_list(self, name: str) -> str | None: ...
