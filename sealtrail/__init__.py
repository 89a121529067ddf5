"""The shell: settings, ``Deployment`` (the one composition root), the database engine and migrations, the
command line (``sealtrail.cli``, one module per command group), the web assembly (``sealtrail.web``: routers per
area and the one error-to-status table), the dev PKI, the demo, logs, metrics, limits, backup.

May import: every package. No domain package (``schemas``, ``hsm_adapters``, ``ledger``, ``registry``,
``signer``, ``verifier``, ``accounts``, ``workflow``, ``jobs``) imports it.
"""
