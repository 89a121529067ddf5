"""The append-only public log alone: RFC 9162 hashing and proofs, C2SP signed notes, checkpoints, tiles and
``.tlog-proof`` files, witnesses and cosignatures, the leaf format (``entry``) and its storage on SQLite or
PostgreSQL with the single sequencer. It knows nothing about documents beyond the hashes in a leaf.

May import: ``schemas`` (and ``errors``). Never ``registry``, ``signer``, ``verifier`` or ``hsm_adapters``.
"""
