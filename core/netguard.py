"""Webhook URL safety (SSRF): only https URLs that resolve to public addresses, unless
``CODETETHER_WEBHOOK_ALLOW_PRIVATE`` is set."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public_address(ip.ipv4_mapped)
    return ip.is_global and not ip.is_multicast


async def validate_webhook_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("webhook URLs must be absolute https URLs")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeURL("webhook URLs must use https")
    if parts.username or parts.password:
        raise UnsafeURL("webhook URLs must not carry credentials")
    if allow_private:
        return
    host = parts.hostname
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeURL(f"the host {host!r} does not resolve") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if not is_public_address(ip):
            raise UnsafeURL(f"the host {host!r} resolves to a non-public address")
