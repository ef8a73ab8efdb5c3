"""Where webhooks may go: public addresses only, checked twice.

1. When an endpoint is saved (`check_url`), its URL must be http(s) (https unless allowed) and its
   host must resolve only to public addresses: the admin gets a 422 at once.
2. At every connection (`GuardedTransport`): DNS may have changed since (or may change between a
   check and a connect: DNS rebinding), so the HTTP client's network backend resolves the host
   itself, vets every address, and connects to a vetted IP. There is no second lookup for an
   attacker to answer differently; TLS still verifies the certificate against the hostname.

Refused unless `webhooks_allow_private`: private, loopback, link-local, multicast, reserved,
unspecified and every other non-global address, IPv4 ones hidden in IPv6 forms included (mapped,
6to4, Teredo). Refused always: cloud metadata services, which are never a legitimate receiver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

from rapport.core.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)


class TargetRefused(Exception):  # noqa: N818 - read as "the target was refused"
    """The URL or one of its host's addresses is not an allowed webhook target."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BlockedAddress(httpcore.ConnectError):
    """Raised inside the HTTP client when a connection would reach a refused address; httpx
    wraps it in a ConnectError whose `__cause__` this is."""

    def __init__(self, refusal: TargetRefused) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def _embedded(ip: Address) -> list[Address]:
    """The address and the IPv4 addresses an IPv6 form carries (mapped, 6to4, Teredo)."""
    found: list[Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                found.append(inner)
    return found


def address_problem(ip: Address, *, allow_private: bool) -> str | None:
    """Why this address is not an allowed target, or None when it is."""
    for candidate in _embedded(ip):
        if candidate in METADATA_ADDRESSES:
            return f"{ip} is a cloud metadata address"
        if allow_private:
            continue
        for flag, label in (
            ("is_unspecified", "an unspecified"),
            ("is_loopback", "a loopback"),
            ("is_link_local", "a link-local"),
            ("is_multicast", "a multicast"),
            ("is_private", "a private"),
            ("is_reserved", "a reserved"),
        ):
            if getattr(candidate, flag):
                return f"{ip} is {label} address"
        if not candidate.is_global:
            return f"{ip} is not a public address"
    return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int, *, within: float) -> list[Address]:
    """The host's addresses, in the resolver's order (an IP literal is its own address)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise TargetRefused("webhook_url_unresolvable", f"{host} does not resolve") from exc
    addresses: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise TargetRefused("webhook_url_unresolvable", f"{host} does not resolve")
    return addresses


async def vetted_addresses(
    host: str, port: int, *, allow_private: bool, within: float
) -> list[Address]:
    """Resolve and vet: every address must be allowed (one bad record refuses the host, so an
    attacker cannot mix a public address in to get a private one tried)."""
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise TargetRefused("webhook_url_private", f"{host} is a cloud metadata service")
    addresses = await resolve(host, port, within=within)
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem is not None:
            raise TargetRefused(
                "webhook_url_private", f"{host} resolves to a refused address: {problem}"
            )
    return addresses


def scheme_problem(parts: SplitResult, settings: Settings) -> TargetRefused | None:
    if parts.scheme not in ("http", "https"):
        return TargetRefused("webhook_url_invalid", "Only http and https URLs are accepted.")
    if parts.scheme == "http" and not (
        settings.webhooks_allow_http or settings.webhooks_allow_private
    ):
        return TargetRefused("webhook_url_insecure", "Webhook URLs must use https.")
    return None


def parse_url(url: str) -> SplitResult:
    """Split a URL, refusing what no receiver URL looks like."""
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise TargetRefused("webhook_url_invalid", "The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise TargetRefused("webhook_url_invalid", "The URL is not valid.") from exc
    if not parts.hostname:
        raise TargetRefused("webhook_url_invalid", "The URL has no host.")
    return parts


async def check_url(url: str, settings: Settings) -> None:
    """Everything a saved endpoint URL must satisfy (raises TargetRefused)."""
    parts = parse_url(url)
    problem = scheme_problem(parts, settings)
    if problem is not None:
        raise problem
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await vetted_addresses(
        parts.hostname,
        port,
        allow_private=settings.webhooks_allow_private,
        within=settings.webhooks_timeout_seconds,
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the vetting step in front of every TCP connect."""

    def __init__(self, *, allow_private: bool, resolve_timeout: float) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.allow_private = allow_private
        self.resolve_timeout = resolve_timeout

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await vetted_addresses(
                host,
                port,
                allow_private=self.allow_private,
                within=min(timeout or self.resolve_timeout, self.resolve_timeout),
            )
        except TargetRefused as refused:
            raise BlockedAddress(refused) from None
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress(TargetRefused("webhook_url_invalid", "Unix sockets are refused."))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose network backend is `GuardedBackend`.

    httpx 0.28 has no public option for the network backend (encode/httpx#3749 proposes one), so
    the pool httpx builds is replaced; the check below fails loudly, rather than sending unvetted
    requests, if a later httpx keeps its pool elsewhere."""

    def __init__(
        self, *, allow_private: bool, resolve_timeout: float, limits: httpx.Limits
    ) -> None:
        super().__init__(trust_env=False, limits=limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError(
                "httpx changed its transport internals: the SSRF guard cannot attach"
            )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(
                allow_private=allow_private, resolve_timeout=resolve_timeout
            ),
        )


def refusal_of(exc: BaseException) -> TargetRefused | None:
    """The refusal behind an httpx error raised by `GuardedBackend`, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedAddress):
            return seen.refusal
        seen = seen.__cause__ or seen.__context__
    return None
