"""The road from data to an issued document: work items, their states and transitions as data, approvals,
corrections, revocations, and the signing steps of registered signers (their own keys on tokens or remote
services).

May import: ``schemas``, ``accounts``, ``registry``, ``ledger``, ``signer``, ``hsm_adapters`` (and ``errors``).
"""
