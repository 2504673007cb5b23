"""OAuth client registration: what ``codetether oauth-clients create`` and ``POST /v1/oauth/clients`` call.

A client is confidential (it gets a ``cts_`` secret, stored only as a SHA-256 hash: the secret has
256 bits of entropy, so a fast hash is enough) or public (no secret; PKCE S256 is then mandatory at
the authorization endpoint). Redirect URIs are matched exactly, so they are checked here once: an
absolute ``https`` URI, or ``http`` on a loopback host for native and test clients, without a
fragment.
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select

from core.db import Database
from core.ids import iso, new_id
from core.models import OAuthClient, User
from core.security import ALL_SCOPES, hash_token, parse_scopes

CLIENT_SECRET_PREFIX = "cts_"
MAX_REDIRECT_URIS = 10


class OAuthClientError(ValueError):
    """Bad input for a client registration (shown to the caller as is)."""


def generate_client_secret() -> str:
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str:
    uri = uri.strip()
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OAuthClientError(f"redirect URI {uri!r} must be an absolute https URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise OAuthClientError(f"redirect URI {uri!r} must use https (http only for loopback hosts)")
    if parts.fragment or "#" in uri:
        raise OAuthClientError(f"redirect URI {uri!r} must not contain a fragment")
    if parts.username or parts.password:
        raise OAuthClientError(f"redirect URI {uri!r} must not contain credentials")
    if len(uri) > 2000:
        raise OAuthClientError("redirect URI is too long")
    return uri


def client_to_dict(client: OAuthClient) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "redirect_uris": list(client.redirect_uris or []),
        "scopes": list(client.scopes or []),
        "owner_id": client.owner_id,
        "created_at": iso(client.created_at),
    }


async def create_oauth_client(
    db: Database,
    *,
    name: str,
    redirect_uris: list[str] | str,
    public: bool = False,
    owner_email: str | None = None,
    owner_id: str | None = None,
    scopes: list[str] | str | None = None,
) -> dict:
    """Registers a client; returns its public description plus ``client_secret`` (confidential only).

    The secret is returned once and never stored in clear.
    """
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise OAuthClientError("the client name must have 1 to 200 characters")
    if isinstance(redirect_uris, str):
        redirect_uris = [redirect_uris]
    uris: list[str] = []
    for uri in redirect_uris or []:
        checked = check_redirect_uri(uri)
        if checked not in uris:
            uris.append(checked)
    if not uris:
        raise OAuthClientError("at least one redirect URI is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise OAuthClientError(f"at most {MAX_REDIRECT_URIS} redirect URIs")
    try:
        allowed = parse_scopes(scopes, default=ALL_SCOPES)
    except ValueError as err:
        raise OAuthClientError(str(err)) from None
    async with db.write_session() as s:
        if owner_email is not None:
            owner = (
                await s.execute(select(User).where(User.email == owner_email.strip().lower()))
            ).scalar_one_or_none()
            if owner is None:
                raise OAuthClientError(f"no user {owner_email}")
            owner_id = owner.id
        elif owner_id is not None and await s.get(User, owner_id) is None:
            raise OAuthClientError(f"no user {owner_id}")
        secret = None if public else generate_client_secret()
        client = OAuthClient(
            client_id=new_id("cli"),
            client_secret_hash=hash_token(secret) if secret else None,
            name=name,
            owner_id=owner_id,
            redirect_uris=uris,
            scopes=allowed,
            is_public=public,
        )
        s.add(client)
        await s.commit()
    out = client_to_dict(client)
    if secret is not None:
        out["client_secret"] = secret
    return out


async def list_oauth_clients(db: Database, owner_id: str) -> list[dict]:
    async with db.session() as s:
        rows = await s.execute(
            select(OAuthClient).where(OAuthClient.owner_id == owner_id).order_by(OAuthClient.created_at.desc())
        )
        return [client_to_dict(c) for c in rows.scalars()]
