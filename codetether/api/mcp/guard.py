"""DNS-rebinding protection for ``/mcp`` (MCP Streamable HTTP transport, "Security Warning").

A page on ``https://evil.example.com`` whose name is made to resolve to a CodeTether server can
make a browser send requests there. Such a request carries the page's name in ``Host`` and its
origin in ``Origin``; the transport spec says servers MUST validate ``Origin`` and answer an
invalid one with ``403``. So every request to ``/mcp`` (any method) is checked before it is
authenticated:

- ``Host`` must name the server: the host of ``CODETETHER_PUBLIC_URL``, one of
  ``CODETETHER_ALLOWED_HOSTS``, the listening address, the loopback names (``localhost``,
  ``127.0.0.1``, ``::1``) while the server listens on loopback, or one of
  ``CODETETHER_MCP_ALLOWED_HOSTS``. Only the name counts, not the port.
- ``Origin``, when there is one (browsers send it; other clients do not, and pass), must be the
  origin of ``CODETETHER_PUBLIC_URL``, the request's own origin (same scheme-less host and port
  as its allowed ``Host``), a loopback origin on any port while loopback is allowed, or one of
  ``CODETETHER_MCP_ALLOWED_ORIGINS``.

``*`` in either list turns that check off. A refusal is ``403`` with a JSON-RPC error without an
id (what the spec allows in the body) whose ``error.data.code`` is ``host_not_allowed`` or
``origin_not_allowed``.

The ``mcp`` SDK's own ``TransportSecuritySettings`` is not used for this: it runs inside the
transport, after authentication (a foreign page would get the ``401`` challenge first), answers
a bad ``Host`` with ``421`` and plain text, and matches ``Host`` as an exact string with its port.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from codetether.core.config import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# JSON-RPC's range for implementation-defined server errors (the TypeScript SDK uses -32000 too).
JSONRPC_SERVER_ERROR = -32000

# A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address, then an optional port.
_HOST = re.compile(
    r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?))(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str

    def body(self) -> dict:
        return {"jsonrpc": "2.0", "id": None,
                "error": {"code": JSONRPC_SERVER_ERROR, "message": f"{self.code}: {self.message}",
                          "data": {"code": self.code, "status": 403}}}


def _split_list(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def parse_host(value: str) -> tuple[str, int | None] | None:
    """The name (lower case, IPv6 without brackets) and port of a Host header; None if malformed."""
    m = _HOST.fullmatch(value.strip().lower())
    if m is None:
        return None
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        return None
    return (m.group("v6") or m.group("name")), port


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{shown}:{port}"


def listens_on_loopback(api_host: str) -> bool:
    host = api_host.strip().strip("[]").lower()
    if host in ("localhost", "", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TransportGuard:
    hosts: frozenset[str]
    origins: frozenset[str]
    any_host: bool = False
    any_origin: bool = False
    loopback: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "TransportGuard":
        hosts: set[str] = set()
        origins: set[str] = set()
        if settings.public_url:
            public = urlsplit(settings.public_url)
            if public.hostname:
                hosts.add(public.hostname.lower())
            origin = normalize_origin(f"{public.scheme}://{public.netloc}")
            if origin:
                origins.add(origin)
        hosts.update(h.lower().strip("[]") for h in _split_list(settings.allowed_hosts))
        api_host = settings.api_host.strip().strip("[]").lower()
        if api_host not in ("", "0.0.0.0", "::"):
            hosts.add(api_host)
        loopback = listens_on_loopback(settings.api_host)
        if loopback:
            hosts.update(LOOPBACK_NAMES)
        extra_hosts = _split_list(settings.mcp_allowed_hosts)
        for entry in extra_hosts:
            parsed = parse_host(entry)
            if parsed is not None:
                hosts.add(parsed[0])
        extra_origins = _split_list(settings.mcp_allowed_origins)
        for entry in extra_origins:
            origin = normalize_origin(entry)
            if origin:
                origins.add(origin)
        return cls(frozenset(hosts), frozenset(origins), any_host="*" in extra_hosts,
                   any_origin="*" in extra_origins, loopback=loopback)

    def check(self, headers: Headers) -> Refusal | None:
        raw_host = headers.get("host", "")
        parsed = parse_host(raw_host)
        if not self.any_host and (parsed is None or parsed[0] not in self.hosts):
            return Refusal("host_not_allowed", (
                f"Host {raw_host!r} is not a name of this server; set CODETETHER_PUBLIC_URL or "
                "CODETETHER_MCP_ALLOWED_HOSTS"))
        raw_origin = headers.get("origin")
        if raw_origin is None or self.any_origin:
            return None
        origin = normalize_origin(raw_origin)
        if origin is not None and self._origin_allowed(origin, parsed):
            return None
        return Refusal("origin_not_allowed", (
            f"Origin {raw_origin!r} may not call this server; add it to CODETETHER_MCP_ALLOWED_ORIGINS"))

    def _origin_allowed(self, origin: str, host: tuple[str, int | None] | None) -> bool:
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        name, port = (parts.hostname or ""), parts.port or DEFAULT_PORTS[parts.scheme]
        if self.loopback and name in LOOPBACK_NAMES:
            return True
        # The request's own origin: the page was served by this server under an allowed Host.
        if host is not None and host[0] in self.hosts and name == host[0]:
            return host[1] is None or host[1] == port
        return False
