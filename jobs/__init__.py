"""Batch jobs: a batch of documents that survives crashes and is never done twice, on procrastinate
(PostgreSQL) or in-process (SQLite), workers, and the handler registry that says what each kind of item runs.

May import: ``schemas``, ``registry``, ``ledger``, ``signer``, ``workflow``, ``hsm_adapters``, ``accounts``
(and ``errors``).
"""

from jobs import approval as _approval
from jobs import batches as _batches

_batches.register_handler(_batches.WORKFLOW_INPUT, _approval)
