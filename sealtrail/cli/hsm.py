"""`sealtrail hsm keygen|import-cert|load-dev-keys`: keys inside an HSM or token over PKCS#11."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment, _key_errors

app = typer.Typer()
hsm_app = typer.Typer(
    help="Keys in an HSM or token (PKCS#11): generate, request a certificate, store it. "
    "The PIN comes from SEALTRAIL_PKCS11_PIN_FILE, never from the command line.",
    no_args_is_help=True,
)
app.add_typer(hsm_app, name="hsm")


def _subject(text: str) -> dict[str, str]:
    names = {"CN": "common_name", "O": "organization_name", "OU": "organizational_unit_name", "C": "country_name",
             "L": "locality_name", "ST": "state_or_province_name", "UID": "user_id", "E": "email_address"}  # fmt: skip
    subject: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().upper() not in names or not value.strip():
            raise typer.BadParameter(f"cannot read {part!r}; write it like CN=Trường THCS Nguyễn Du,O=...,C=VN")
        subject[names[key.strip().upper()]] = value.strip()
    return subject


@hsm_app.command("keygen")
def hsm_keygen(
    label: Annotated[str, typer.Option(help="Label for the new key on the token")],
    subject: Annotated[str, typer.Option(help="Certificate subject, e.g. 'CN=Trường THCS Nguyễn Du,O=...,C=VN'")],
    csr: Annotated[Path, typer.Option(help="Where to write the certificate request (PEM) for the CA")],
    key_type: Annotated[str, typer.Option("--type", help="rsa or ec")] = "rsa",
    bits: Annotated[int, typer.Option(help="RSA key size")] = 3072,
) -> None:
    """Generate a non-extractable key inside the token and write a certificate request for the CA."""
    from hsm_adapters.pkcs11 import generate_key, make_csr

    fields = _subject(subject)
    with _key_errors():
        config = _deployment().pkcs11_config(label)
        public = generate_key(config, key_type=key_type, bits=bits)
        csr.write_bytes(make_csr(config, public, fields))
    typer.echo(f"Key '{label}' generated on the token (it cannot be exported). Send {csr} to the CA.")
    _log_key_change("keygen", label, "")


@hsm_app.command("import-cert")
def hsm_import_cert(
    label: Annotated[str, typer.Option(help="Label of the key the certificate belongs to")],
    chain: Annotated[Path, typer.Argument(help="PEM file: the issued certificate first, then its CA chain")],
) -> None:
    """Store the certificate the CA issued (and its chain) on the token beside its key."""
    from hsm_adapters.pkcs11 import Pkcs11KeyBackend, import_certificates
    from sealtrail.deployment import load_pem_certs

    with _key_errors():
        config = _deployment().pkcs11_config(label)
        import_certificates(config, load_pem_certs(chain))
        backend = Pkcs11KeyBackend(config)
        backend.close()
    typer.echo(f"Certificate stored for '{label}': {backend.certificate.subject.human_friendly}")
    _log_key_change("import-cert", label, hashlib.sha256(backend.certificate.dump()).hexdigest())


def _log_key_change(action: str, label: str, cert_sha256: str) -> None:
    """A signing-key change is security-relevant: audited, and a ``key`` entry in the public log."""
    from sealtrail.web.deps import AccountsContext

    AccountsContext(_deployment()).record(
        None, "cli", "key.change", detail={"action": action, "label": label, "cert_sha256": cert_sha256}
    )


@hsm_app.command("load-dev-keys")
def hsm_load_dev_keys() -> None:
    """Development only: copy the dev PKI's signer keys and certificates onto the configured token."""
    from asn1crypto import pem

    from hsm_adapters.pkcs11 import import_certificates, import_private_key
    from sealtrail.devpki import SIGNER_ROLES

    with _key_errors():
        dep = _deployment()
        pki = dep.dev_pki
        for role in SIGNER_ROLES:
            label = dep.settings.pkcs11_keys.get(role, role)
            config = dep.pkcs11_config(label)
            import_private_key(config, pem.unarmor((pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
            import_certificates(config, [pki.cert(role), pki.issuing_ca])
            typer.echo(f"  {role:18} → key '{label}' (DEV ONLY)")
