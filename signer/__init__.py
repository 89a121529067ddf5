"""Making documents: rendering (Jinja2 + WeasyPrint → PDF/A-3b with the XML attached and a QR on each page),
PAdES and XAdES signatures in the law's order, QR seals, issuing (render → sign → store → log, all or nothing),
two-step signing for signers' own keys, archiving to B-LTA, translations, credentials and status lists, stored
files, and the ``sealtrail agent`` client that signs with a USB token.

May import: ``schemas``, ``hsm_adapters``, ``registry``, ``ledger`` (and ``errors``). Never ``verifier``: what
both need (envelopes, the QR-seal and status-list codecs) lives in ``schemas``.
"""
