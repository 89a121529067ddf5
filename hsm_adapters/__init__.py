"""Key backends: where signing keys live and how a digest gets signed.

One protocol, :class:`hsm_adapters.base.KeyBackend`, and one module per backend (``soft`` for PKCS#12 files in
development, ``pkcs11`` for hardware security modules and SoftHSM2, ``token`` for a signer's USB token through
``sealtrail agent``, ``remote`` for CSC API v2 remote-signing services). Backends know digests, certificates and
keys; they know nothing about PDFs, XML or the ledger.

May import: nothing of SealTrail's (``errors`` once it exists).
"""

from hsm_adapters.base import KeyBackend, KeyBackendError, SignatureMechanism

__all__ = ["KeyBackend", "KeyBackendError", "SignatureMechanism"]
