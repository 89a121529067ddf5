"""Checking documents: strict parsing, PAdES/XAdES validation with trust lists, revocation and timestamps, the
register's status and the log's inclusion proof (fail-closed), QR seals, bulk checks and look-ups, credentials,
translations, reports and receipts, the public pages, and the offline trust bundle.

The public verifier deploys alone, with read-only database access and no document-signing key.
May import: ``schemas``, ``ledger``, ``registry`` (read-only) (and ``errors``). Never ``signer``,
``hsm_adapters``, ``workflow`` or ``jobs``.
"""
