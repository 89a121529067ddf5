"""Revocation fetching for *signing*, limited to an allow-list of hosts.

Verification never fetches anything (see verifier/). Signing at B-LT does fetch OCSP responses, CRLs and issuer
certificates for our own signers' chains. Those URLs come from certificates, so this wrapper around pyHanko's
default fetchers refuses any URL whose host is not on the allow-list: the hosts named in the configured trust
list's own certificates and the configured timestamp authorities (plus any given explicitly).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from asn1crypto import x509
from pyhanko_certvalidator.errors import CRLFetchError, OCSPFetchError
from pyhanko_certvalidator.fetchers import _default_fetcher_backend
from pyhanko_certvalidator.fetchers.api import (
    CertificateFetcher,
    CRLFetcher,
    FetcherBackend,
    Fetchers,
    OCSPFetcher,
    OwnedFetcherBackend,
)


def _host(url: str) -> str:
    return (urlparse(url).hostname or "").lower()


def certificate_urls(cert: Any) -> list[str]:
    """Every fetchable URL a certificate names: OCSP, CRL distribution points (and delta), CA issuers."""
    urls: list[str] = list(getattr(cert, "ocsp_urls", []) or [])
    for attr in ("crl_distribution_points", "delta_crl_distribution_points"):
        urls += [p.url for p in getattr(cert, attr, []) or [] if p.url]
    for desc in (cert.authority_information_access_value or []) if isinstance(cert, x509.Certificate) else []:
        if (
            desc["access_method"].native == "ca_issuers"
            and desc["access_location"].name == "uniform_resource_identifier"
        ):
            urls.append(desc["access_location"].native)
    return urls


def allowed_hosts(certs: Iterable[x509.Certificate], urls: Iterable[str] = ()) -> frozenset[str]:
    return frozenset(h for h in [*(_host(u) for c in certs for u in certificate_urls(c)), *map(_host, urls)] if h)


class _Ocsp(OCSPFetcher):
    def __init__(self, inner: OCSPFetcher, ok: frozenset[str]) -> None:
        self.inner, self.ok = inner, ok

    async def fetch(self, cert: Any, authority: Any) -> Any:
        bad = [u for u in getattr(cert, "ocsp_urls", []) or [] if _host(u) not in self.ok]
        if bad:
            raise OCSPFetchError(f"OCSP URL not on the allow-list: {', '.join(bad)}")
        return await self.inner.fetch(cert, authority)

    def fetched_responses(self) -> Iterable[Any]:
        return self.inner.fetched_responses()

    def fetched_responses_for_cert(self, cert: Any) -> Iterable[Any]:
        return self.inner.fetched_responses_for_cert(cert)


class _Crl(CRLFetcher):
    def __init__(self, inner: CRLFetcher, ok: frozenset[str]) -> None:
        self.inner, self.ok = inner, ok

    async def fetch(self, cert: Any, *, use_deltas: Any = None) -> Iterable[Any]:
        points = [*(getattr(cert, "crl_distribution_points", []) or [])]
        bad = [p.url for p in points if p.url and _host(p.url) not in self.ok]
        if bad:
            raise CRLFetchError(f"CRL URL not on the allow-list: {', '.join(bad)}")
        return await self.inner.fetch(cert, use_deltas=use_deltas)

    def fetched_crls(self) -> Iterable[Any]:
        return self.inner.fetched_crls()

    def fetched_crls_for_cert(self, cert: Any) -> Iterable[Any]:
        return self.inner.fetched_crls_for_cert(cert)


class _Certs(CertificateFetcher):
    def __init__(self, inner: CertificateFetcher, ok: frozenset[str]) -> None:
        self.inner, self.ok = inner, ok

    async def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[x509.Certificate, None]:
        if all(_host(u) in self.ok for u in certificate_urls(cert)):
            async for issuer in self.inner.fetch_cert_issuers(cert):
                yield issuer

    async def fetch_crl_issuers(self, certificate_list: Any) -> AsyncGenerator[x509.Certificate, None]:
        return
        yield  # an async generator that yields nothing: CRL issuers come from the trust list

    def fetched_certs(self) -> Iterable[x509.Certificate]:
        return self.inner.fetched_certs()


class AllowListFetcherBackend(FetcherBackend):
    """pyHanko's default fetchers, refusing every URL whose host is not in ``hosts``."""

    def __init__(self, hosts: Iterable[str], inner: FetcherBackend | None = None) -> None:
        self.hosts = frozenset(h.lower() for h in hosts)
        self.inner = inner or _default_fetcher_backend()

    def get_fetchers(self) -> Fetchers:
        f = self.inner.get_fetchers()
        return Fetchers(
            ocsp_fetcher=_Ocsp(f.ocsp_fetcher, self.hosts),
            crl_fetcher=_Crl(f.crl_fetcher, self.hosts),
            cert_fetcher=_Certs(f.cert_fetcher, self.hosts),
        )

    async def close(self) -> None:
        await self.inner.close()


def signing_fetchers(
    trust: Sequence[x509.Certificate],
    timestamp_urls: Sequence[str] = (),
    extra_hosts: Sequence[str] = (),
    inner: FetcherBackend | None = None,
) -> OwnedFetcherBackend:
    """The fetcher backend for signing: hosts named by our own CA certificates and TSAs, plus ``extra_hosts``;
    handed over to the validation context, which closes it when done (as it does with its default one).
    ``inner`` does the fetching (pyHanko's default backend if None)."""
    hosts = allowed_hosts(trust, timestamp_urls) | frozenset(extra_hosts)
    return OwnedFetcherBackend(AllowListFetcherBackend(hosts, inner))
