"""The register of documents: one record per document (what its QR token resolves to, its status, its hashes and
log position), status-list positions, the keyed look-up hashes, and the lifecycle that flips a document's status
in the same transaction as its log entry.

May import: ``schemas``, ``ledger`` (and ``errors``).
"""
