"""Installs the credentials beyond API keys on an app (an ``codetether.api.app.EXTENSIONS`` installer).

- OAuth 2.0 access tokens issued by ``/oauth/token`` (``cta_...``), resolved per request;
- embed session secrets of partners' ``<codetether-tasks>`` (``ctes_...``), resolved per request;
- JWTs of an external OpenID Connect issuer when ``CODETETHER_OIDC_ISSUER`` is set;
- the deprecation notice on responses to requests authenticated with ``?api_key=`` (accepted only
  with ``CODETETHER_ALLOW_QUERY_API_KEY=true``; ``codetether/api/deps.py`` marks such requests).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from codetether.api.edge.middleware import HTTPMiddleware, add_response_headers
from codetether.api.embed.credentials import EmbedSecretResolver
from codetether.api.oauth.access_tokens import AccessTokenResolver
from codetether.api.oauth.oidc import OIDCResolver
from codetether.api.state import AppState

log = logging.getLogger(__name__)

# RFC 9745: the date from which query-string keys are deprecated, as a structured-field date.
QUERY_KEY_DEPRECATED_AT = 1795392000  # 2026-11-23T00:00:00Z
QUERY_KEY_DOCS = "https://codetether.dev/docs/oauth#query-string-api-keys"  # docs/oauth.md


class QueryKeyDeprecationMiddleware(HTTPMiddleware):
    """Adds ``Deprecation``, ``Link`` and ``Warning`` headers when the caller sent its key in the URL."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get("state", {}).get("query_key_used"):
                add_response_headers(message, [
                    (b"deprecation", f"@{QUERY_KEY_DEPRECATED_AT}".encode()),
                    (b"link", f'<{QUERY_KEY_DOCS}>; rel="deprecation"; type="text/html"'.encode()),
                    (b"warning", (b'299 - "API keys in the query string are deprecated: they end up in logs and '
                                  b'browser history. Send Authorization: Bearer ct_... instead."')),
                ])
            await send(message)

        await self.app(scope, receive, _send)


def install_auth_extensions(app: FastAPI, state: AppState) -> None:
    state.authenticator.add_resolver(AccessTokenResolver(state.db))
    state.authenticator.add_resolver(EmbedSecretResolver(state.db))
    if state.settings.oidc_issuer:
        resolver = OIDCResolver(state.db, state.settings.oidc_issuer, state.settings.oidc_audience)
        if not state.settings.oidc_audience:
            log.warning("CODETETHER_OIDC_ISSUER is set without CODETETHER_OIDC_AUDIENCE: the issuer's JWTs are "
                        "not accepted as bearer tokens (single sign-on to the console still works)")
        state.authenticator.add_resolver(resolver)
        state.extras["oidc"] = resolver
    app.add_middleware(QueryKeyDeprecationMiddleware)
