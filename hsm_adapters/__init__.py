"""Key backends: where signing keys live and how a digest gets signed.

One protocol, :class:`hsm_adapters.base.KeyBackend`, and one module per backend (``soft`` for PKCS#12 files in
development, ``pkcs11`` for hardware security modules and SoftHSM2). Backends know digests, certificates and
keys; they know nothing about PDFs, XML or the ledger.
"""

from hsm_adapters.base import KeyBackend, KeyBackendError, SignatureMechanism

__all__ = ["KeyBackend", "KeyBackendError", "SignatureMechanism"]
