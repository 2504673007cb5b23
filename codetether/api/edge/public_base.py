"""The base URL the server names itself by where a client will follow it: OAuth and RFC 9728
metadata (``codetether/api/oauth/metadata.py``, ``registration.py``), the A2A agent card
(``codetether/api/a2a/routes.py``), MCP's ``WWW-Authenticate`` challenge
(``codetether/api/mcp/routes.py``) and the console's emailed and OIDC links.

``CODETETHER_PUBLIC_URL`` when it is set. Without it, the request's ``Host`` is used only when it
names a loopback address, the address the API listens on, or one of ``CODETETHER_ALLOWED_HOSTS``;
any other ``Host`` gets the listening address instead, so a request cannot make the server
advertise someone else's authorization server. A base taken from a request is never cacheable:
a shared cache would otherwise hand it to everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import Scope

from codetether.core.config import Settings

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
CACHEABLE = "public, max-age=3600"


@dataclass(frozen=True)
class PublicBase:
    url: str
    # True when the URL is the configured public URL, the only base others may cache.
    configured: bool

    @property
    def cache_control(self) -> str:
        return CACHEABLE if self.configured else "no-store"


def allowed_hosts(settings: Settings) -> frozenset[str]:
    names = {h.strip().lower().strip("[]") for h in settings.allowed_hosts.split(",") if h.strip()}
    if settings.api_host not in ("0.0.0.0", "::", ""):
        names.add(settings.api_host.lower().strip("[]"))
    return LOOPBACK_HOSTS | names


def public_base(scope: Scope, settings: Settings) -> PublicBase:
    if settings.public_url:
        return PublicBase(settings.public_url.rstrip("/"), True)
    conn = HTTPConnection(scope)
    try:
        # Rebuilt from the parsed host and port, so nothing else in the header reaches the URL.
        parts = urlsplit(str(conn.url))
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        host, port = "", None
    if host in allowed_hosts(settings):
        shown = f"[{host}]" if ":" in host else host
        netloc = f"{shown}:{port}" if port else shown
        return PublicBase(f"{parts.scheme}://{netloc}{scope.get('root_path', '')}".rstrip("/"), False)
    return PublicBase(settings.api_base_url.rstrip("/"), False)
