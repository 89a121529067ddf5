"""The check before signing (Circular 15/2025/TT-BKHCN asks signing software to check the certificate first): the
signer's certificate chains to the trust list, is valid now and is not revoked (OCSP/CRL fetched now, hard-fail).

The registration side (registered for the role and issuer, names the organisation or the printed signer) is
``registry.identities.refusal_before_signing``; the composition root combines both and refuses with the message,
before anything is signed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)

from errors import PermanentError


class SigningRefused(PermanentError):
    """The step is refused before anything is signed; the message is for a school's IT person (vi / en)."""


def chain_problem(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate] = (),
    *,
    moment: datetime | None = None,
) -> str | None:
    """Why the certificate may not sign now (None: it chains to a trusted root, is valid and not revoked)."""
    who = certificate.subject.native.get("common_name", "?")
    context = ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=[*chain, *other_certs],
        allow_fetching=True,
        revocation_mode="hard-fail",
        moment=moment,
    )
    validator = CertificateValidator(certificate, intermediate_certs=list(chain), validation_context=context)
    try:
        asyncio.run(validator.async_validate_path())
    except RevokedError:
        return f"Chứng thư số của {who} đã bị thu hồi / {who}'s certificate has been revoked"
    except ExpiredError:
        return f"Chứng thư số của {who} đã hết hạn / {who}'s certificate has expired"
    except NotYetValidError:
        return f"Chứng thư số của {who} chưa có hiệu lực / {who}'s certificate is not valid yet"
    except InsufficientRevinfoError:
        return (
            f"Không kiểm tra được tình trạng thu hồi chứng thư số của {who} (OCSP/CRL không trả lời); thử lại sau / "
            f"the revocation status of {who}'s certificate cannot be checked now (OCSP/CRL unreachable); try later"
        )
    except PathBuildingError:
        return (
            f"Chứng thư số của {who} không thuộc danh sách tin cậy (không dẫn tới chứng thư gốc nào được tin cậy) / "
            f"{who}'s certificate does not chain to the trust list"
        )
    except (PathValidationError, ValidationError) as exc:
        return f"Chứng thư số của {who} không hợp lệ / {who}'s certificate is not valid: {exc}"
    return None
