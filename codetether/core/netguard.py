"""Webhook URL safety (SSRF): only https URLs that resolve to public addresses, unless
``CODETETHER_WEBHOOK_ALLOW_PRIVATE`` is set.

Two checks, both here:

* :func:`validate_webhook_url` when a URL is saved (``POST /v1/automation/tasks`` with a
  ``webhook_url``, ``POST``/``PATCH /v1/webhooks``): scheme, no credentials, and every address the
  host resolves to must be public.
* :class:`GuardedBackend` at every send: an httpcore network backend that resolves the host
  itself, refuses non-public addresses and connects to the very address it checked. TLS still
  uses the URL's host name for SNI and certificate checks (httpcore passes it separately), so
  there is no window between "check" and "connect" for DNS rebinding to exploit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeURL(ValueError):
    pass


class BlockedAddress(httpcore.ConnectError):
    """Raised at connect time when the destination resolves to a non-public address."""


# Networks that are never a legitimate webhook destination. ``ipaddress``'s ``is_global`` covers
# most of them; they are listed explicitly so the rule does not depend on the Python version's
# registry tables (CGNAT, for one, was missing from ``is_private`` in older versions).
_BLOCKED_NETS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated) addresses
        "::ffff:0:0/96",  # IPv4-mapped (checked through the embedded IPv4 address too)
        "64:ff9b::/96",  # NAT64 (checked through the embedded IPv4 address too)
        "64:ff9b:1::/48",
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...), see below
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (embeds an IPv4 address)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = ip.packed
    if packed[:12] == bytes(12) and packed[12:] != bytes(4):
        return ipaddress.IPv4Address(packed[12:])  # ::a.b.c.d (IPv4-compatible)
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public_address(ip: IPAddress | str) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
    # IPv4-mapped, IPv4-compatible and translation prefixes are in the list too: a public IPv4
    # destination is reachable by its own address, so the wrapped forms are never needed.
    for net in _BLOCKED_NETS:
        if ip.version == net.version and ip in net:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]
        if addr not in seen:
            seen.append(addr)
    return seen


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def canonical_host(host: str) -> str:
    """One spelling per destination: lower case without a trailing dot, and an address in its
    standard form, whichever way it was written (``0x7f.1``, ``2130706433`` and ``0177.0.0.1`` are
    ``127.0.0.1``, as the system resolver reads them; an IPv4-mapped IPv6 address is its IPv4
    address). No DNS: two names of one address stay two hosts."""
    name = host.strip().strip("[]").lower().rstrip(".")
    literal = _literal(name)
    if literal is None and name and all(c in "0123456789abcdefx." for c in name):
        try:
            literal = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            literal = None
    if isinstance(literal, ipaddress.IPv6Address) and literal.ipv4_mapped is not None:
        literal = literal.ipv4_mapped
    if literal is not None:
        return str(literal)
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def check_url_shape(url: str, *, allow_private: bool) -> None:
    """The static part of the check: scheme, host present, no credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise UnsafeURL("webhook URLs must be absolute https URLs") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("webhook URLs must be absolute https URLs")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeURL("webhook URLs must use https")
    if parts.username or parts.password:
        raise UnsafeURL("webhook URLs must not carry credentials")


async def resolve_public(host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
    """All addresses of ``host``; raises :class:`UnsafeURL` unless every one is public."""
    literal = _literal(host)
    if literal is not None:
        addrs = [str(literal)]
    else:
        try:
            addrs = await resolver(host, port)
        except (socket.gaierror, UnicodeError, OSError):
            raise UnsafeURL(f"the host {host!r} does not resolve") from None
    if not addrs:
        raise UnsafeURL(f"the host {host!r} does not resolve")
    for addr in addrs:
        if not is_public_address(addr):
            raise UnsafeURL(f"the host {host!r} resolves to a non-public address")
    return addrs


async def validate_webhook_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    check_url_shape(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    await resolve_public(parts.hostname or "", parts.port or 443, resolver)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, validates and connects to the validated address in one step."""

    def __init__(self, resolver: Resolver = system_resolver, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()
        # The last address connected to, for the delivery log.
        self.last_address: str | None = None

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addrs = await resolve_public(host, port, self._resolver)
        except UnsafeURL as err:
            raise BlockedAddress(str(err)) from None
        last_error: Exception | None = None
        for addr in addrs:
            try:
                stream = await self._inner.connect_tcp(
                    addr, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                last_error = err
                continue
            self.last_address = addr
            return stream
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise BlockedAddress("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool connecting through :class:`GuardedBackend`."""

    def __init__(self, *, resolver: Resolver = system_resolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = GuardedBackend(resolver)
        # httpx exposes no argument for the pool's network backend; the pool reads this attribute
        # each time it opens a connection.
        self._pool._network_backend = self.backend


def webhook_http_client(*, allow_private: bool, timeout: float, resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """The client every webhook is sent with: no redirects, no proxies from the environment, and
    (unless private destinations are allowed) the connect-time address guard."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
    transport: httpx.AsyncBaseTransport
    if allow_private:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    else:
        transport = GuardedTransport(resolver=resolver, limits=limits, trust_env=False)
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
    )
