"""Fetching an attachment URL under the webhook-URL address rules (``codetether/core/netguard.py``).

The request goes through the webhook client: no proxies from the environment, and unless
``webhook_allow_private`` is set every address the host resolves to must be public, checked at
connect time (so a DNS answer cannot change between the check and the connection). Redirects are
followed by hand, at most :data:`MAX_REDIRECTS`, each target checked the same way. The body is
streamed into the file storage with the same size limit as an upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from codetether.core.netguard import BlockedAddress, UnsafeURL, check_url_shape

MAX_REDIRECTS = 5
CHUNK = 256 * 1024


@dataclass
class FetchRefused(Exception):
    """The URL cannot give a file: ``retryable`` for a server error or a dropped connection."""

    message: str
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


@dataclass
class Download:
    response: httpx.Response
    content_type: str | None
    declared_size: int | None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_bytes(CHUNK):
            yield chunk


async def open_download(client: httpx.AsyncClient, url: str, *, allow_private: bool) -> Download:
    """The response to ``GET url`` (after redirects), its body not yet read; close it after use."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_url_shape(url, allow_private=allow_private)
        except UnsafeURL as err:
            raise FetchRefused(f"the URL is refused: {str(err).replace('webhook URLs', 'attachment URLs')}") from None
        request = client.build_request("GET", url, headers={"Accept": "*/*", "User-Agent": "CodeTether-Attachments/1"})
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as err:
            if isinstance(err.__cause__, BlockedAddress):
                raise FetchRefused(f"the URL is refused: {err}") from None
            raise FetchRefused(f"could not connect: {err}", retryable=True) from None
        except httpx.HTTPError as err:
            raise FetchRefused(f"the download failed: {err.__class__.__name__}", retryable=True) from None
        if response.is_redirect and "location" in response.headers:
            await response.aclose()
            url = urljoin(url, response.headers["location"])
            continue
        if response.status_code >= 400:
            await response.aclose()
            raise FetchRefused(f"the server answered {response.status_code}", retryable=response.status_code >= 500
                               or response.status_code == 429)
        if response.status_code != 200:
            await response.aclose()
            raise FetchRefused(f"the server answered {response.status_code} without a body to use")
        length = response.headers.get("content-length")
        return Download(response, response.headers.get("content-type"),
                        int(length) if length and length.isdigit() else None)
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
