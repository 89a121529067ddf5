"""The error taxonomy: one root with a message for a person and a transient flag, and the key backends' choices."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import errors
from hsm_adapters.base import KeyBackendError
from hsm_adapters.pkcs11 import Pkcs11Config, Pkcs11KeyBackend, load_library
from hsm_adapters.remote import CscClient, CscEndpoints, RemoteSigningError
from hsm_adapters.soft import SoftKeyBackend
from tests.conftest import SOFTHSM_MODULE, SoftHsm, free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "ledger", "hsm_adapters", "signer", "verifier", "sealtrail", "registry", "workflow", "jobs",
            "accounts")  # fmt: skip


def test_a_message_in_both_languages_and_the_flag() -> None:
    error = errors.SealTrailError("Mã PIN không đúng", "the PIN is wrong")
    assert str(error) == "Mã PIN không đúng / the PIN is wrong" == error.message
    assert (error.message_vi, error.message_en, error.transient) == ("Mã PIN không đúng", "the PIN is wrong", False)
    assert str(errors.SealTrailError("một văn bản / one text")) == "một văn bản / one text"
    assert errors.TransientError("x").transient and not errors.PermanentError("x").transient
    assert errors.SealTrailError("x", transient=True).transient and not errors.SealTrailError.transient
    assert errors.is_transient(errors.TransientError("x")) and not errors.is_transient(OSError("a foreign error"))


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) for every public exception class defined in our packages."""
    found = []
    for package in PACKAGES:
        if not (ROOT / package).is_dir():
            continue
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    bases = {ast.unparse(b) for b in node.bases}
                    if any(b.endswith(("Error", "Exception")) or "Error" in b for b in bases):
                        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                        found.append((module, node.name))
    return found


def test_every_exception_class_of_ours_has_the_one_root() -> None:
    classes = _exception_classes()
    assert len(classes) >= 30, classes
    outside = []
    for module, name in classes:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, BaseException) and not issubclass(cls, errors.SealTrailError):
            outside.append(f"{module}.{name}")
    assert not outside, f"exception classes outside errors.SealTrailError: {outside}"


def test_pkcs11_a_wrong_pin_or_a_missing_key_is_permanent_an_absent_token_transient(softhsm: SoftHsm) -> None:
    load_library(SOFTHSM_MODULE).reinitialize()  # a real C_Login, not "already logged in" from other tests
    wrong = Pkcs11Config(
        module=SOFTHSM_MODULE, pin_file=softhsm.wrong_pin_file, token_label="sealtrail-keygen", key_label="any"
    )
    with pytest.raises(KeyBackendError) as pin:
        Pkcs11KeyBackend(wrong)
    assert not pin.value.transient
    assert "Mã PIN" in pin.value.message_vi and "is wrong" in pin.value.message_en
    with pytest.raises(KeyBackendError) as again:  # the refused PIN is not offered to the token again
        Pkcs11KeyBackend(wrong)
    assert not again.value.transient and str(again.value) == str(pin.value)

    with pytest.raises(KeyBackendError) as missing:
        Pkcs11KeyBackend(softhsm.config("sealtrail-school", "vice_principal"))
    assert not missing.value.transient and "vice_principal" in str(missing.value)

    with pytest.raises(KeyBackendError) as absent:
        Pkcs11KeyBackend(softhsm.config("unplugged-token", "seal"))
    assert absent.value.transient and "Is the token plugged in" in str(absent.value)


def test_soft_key_a_wrong_passphrase_is_permanent(dev_pki: object) -> None:
    with pytest.raises(KeyBackendError) as wrong:
        SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"), b"not the passphrase")  # type: ignore[attr-defined]
    assert not wrong.value.transient


def test_remote_signing_unreachable_is_transient() -> None:
    client = CscClient(CscEndpoints(f"http://127.0.0.1:{free_port()}"), "token", timeout=2)
    with pytest.raises(RemoteSigningError) as unreachable:
        client.list_credentials()
    assert unreachable.value.transient and "cannot reach" in str(unreachable.value)
