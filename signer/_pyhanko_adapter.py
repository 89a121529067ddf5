"""The one place where signer/ relies on pyHanko behaviour that is not public API (pinned: pyhanko 0.38.0).

Each item here is checked by tests/test_library_canaries.py, which fails loudly when a new pyHanko version changes
it; nothing else in signer/ touches pyHanko internals or matches pyHanko's error texts.

* :class:`ProviderReplacingSigner`: pyHanko builds the signed attributes of each signature in the internal hook
  ``Signer._signed_attr_providers``. The public alternative, ``Signer.signed_attr_prov_spec``, replaces the whole
  provider spec, but the spec pyHanko would choose needs the per-signature settings (signing time, CAdES
  attributes, timestamper) that only ``PdfSigner`` knows, so we keep pyHanko's providers and swap one of them.
* :class:`ImportedPdfBytes`: ``ImportedPdfPage`` only imports from a file name; importing from a parsed reader
  uses ``PdfContent._ensure_writer``.
* :func:`needed_space`: when the signature container did not fit, pyHanko says so only in its error text.
* :func:`signing_failure_is_transient`: which of pyHanko's ``SigningError``\\ s can pass by themselves (the signer's
  certificate could not be validated because revocation data could not be fetched) is only known from the
  certvalidator error it was raised from (``__cause__``).
"""

from __future__ import annotations

import binascii
import re
import ssl
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from pyhanko.pdf_utils.content import ImportedPdfPage
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import attributes, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.errors import CertificateFetchError, InsufficientRevinfoError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession

PYHANKO_VERSION = "0.38.0"  # the version these seams were written against (pyproject pins it)

_NEEDED = re.compile(r"contents required (\d+) bytes")


class ProviderReplacingSigner(signers.Signer):
    """A pyHanko Signer that replaces the signed-attribute providers of one exact type with a ready one."""

    replaced_providers: dict[type[attributes.CMSAttributeProvider], attributes.CMSAttributeProvider]

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterable[attributes.CMSAttributeProvider]:
        # pyHanko's internal hook: PAdES and generic CMS signatures alike take their signed attributes from here.
        for provider in super()._signed_attr_providers(*args, **kwargs):
            yield self.replaced_providers.get(type(provider), provider)


class ImportedPdfBytes(ImportedPdfPage):
    """A page of an already parsed PDF, imported as a form XObject (pyHanko's version wants a file name).

    The reader is shared by every signature that uses the same stamp, so its objects are parsed only once.
    """

    def __init__(self, reader: PdfFileReader, page_ix: int = 0) -> None:
        super().__init__("", page_ix=page_ix)  # type: ignore[no-untyped-call]  # pyHanko's __init__ is unannotated
        self.reader = reader

    def render(self) -> bytes:
        xobj = self._ensure_writer.import_page_as_xobject(self.reader, page_ix=self.page_ix)
        resource_name = b"/Import" + binascii.hexlify(uuid.uuid4().bytes)
        self.resources.xobject[resource_name.decode("ascii")] = xobj
        x1, y1, x2, y2 = xobj.get_object()["/BBox"]
        self.box = BoxConstraints(width=abs(x1 - x2), height=abs(y1 - y2))
        return resource_name + b" Do"


class SharedTlsSession(LazySession):
    """pyHanko's lazy per-event-loop HTTP session, built by ``factory`` (e.g. on a shared TLS context).

    Overrides both public methods of ``LazySession`` (``get_session``, ``close``) and keeps its own state, so it
    does not depend on how ``LazySession`` stores its session.
    """

    def __init__(self, factory: Callable[[], aiohttp.ClientSession]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # certvalidator's LazySession.__init__ is unannotated
        self._factory = factory
        self._own: aiohttp.ClientSession | None = None

    def get_session(self) -> aiohttp.ClientSession:
        if self._own is None:
            self._own = self._factory()
        return self._own

    async def close(self) -> None:
        # A session belongs to the event loop that made it: drop it, so the next loop gets a fresh one.
        session, self._own = self._own, None
        if session is not None:
            await session.close()


def tls_session_factory(context: ssl.SSLContext) -> Callable[[], aiohttp.ClientSession]:
    return lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


def needed_space(exc: PyHankoSigningError, fallback: int) -> int | None:
    """The size pyHanko says a signature container needed when it did not fit its reserved space (else None).

    pyHanko states the size only in its message ("... contents required N bytes"); an older wording says only
    "not enough space", for which ``fallback`` is returned."""
    message = str(exc)
    match = _NEEDED.search(message)
    if match:
        return int(match.group(1))
    return fallback if "not enough space" in message.lower() else None


def failure_is_transient(exc: BaseException) -> bool:
    """Whether a failure raised while pyHanko signed, timestamped or gathered validation data may pass by itself:
    a timestamp service, OCSP/CRL responder or the network did not answer."""
    if isinstance(exc, PyHankoSigningError):
        return signing_failure_is_transient(exc)
    return isinstance(
        exc, TimestampRequestError | InsufficientRevinfoError | CertificateFetchError | OSError | aiohttp.ClientError
    )


def signing_failure_is_transient(exc: PyHankoSigningError) -> bool:
    """Whether pyHanko's signing failure may pass by itself: the signer's certificate could not be validated
    because revocation data or a certificate could not be fetched (OCSP/CRL/AIA service down). A revoked, expired
    or untrusted certificate, a field or permission problem, a bad digest choice: permanent."""
    cause = exc.__cause__
    return isinstance(cause, InsufficientRevinfoError | CertificateFetchError | OSError | aiohttp.ClientError)
