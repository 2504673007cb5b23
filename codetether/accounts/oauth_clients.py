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

from sqlalchemy import delete, select

from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import iso, new_id
from codetether.core.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, User
from codetether.accounts.credentials import FIRST_PARTY_SCOPES, OAUTH_SCOPES, hash_token, parse_scopes

CLIENT_SECRET_PREFIX = "cts_"
MAX_REDIRECT_URIS = 10


class OAuthClientError(ServiceError, ValueError):
    """Bad input for a client registration (422, shown to the caller as is)."""

    def __init__(self, message: str) -> None:
        super().__init__(422, "invalid_oauth_client", message)


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
        "self_registered": bool(client.self_registered),
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
    self_registered: bool = False,
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
        allowed = parse_scopes(scopes, default=OAUTH_SCOPES)
    except ValueError as err:
        raise OAuthClientError(str(err)) from None
    first_party = [s for s in allowed if s in FIRST_PARTY_SCOPES]
    if first_party:
        raise OAuthClientError(
            f"an OAuth client can never be granted {', '.join(first_party)}: it is for first-party credentials only"
        )
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
            self_registered=self_registered,
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


async def get_oauth_client(db: Database, client_id: str, *, owner_id: str | None = None) -> dict | None:
    """The client's public description; ``None`` if it does not exist or (with ``owner_id``) is not theirs."""
    async with db.session() as s:
        client = await s.get(OAuthClient, client_id)
    if client is None or (owner_id is not None and client.owner_id != owner_id):
        return None
    return client_to_dict(client)


async def delete_oauth_client(db: Database, client_id: str, *, owner_id: str | None = None) -> bool:
    """Deletes a client with every token and grant it holds, in one transaction.

    The rows are deleted outright (not only marked revoked), so nothing the client was issued
    can authenticate, refresh or be introspected afterwards. With ``owner_id`` only that user's
    client is deleted (another user's is reported as missing). Returns whether a client went.
    """
    async with db.write_session() as s:
        client = await s.get(OAuthClient, client_id)
        if client is None or (owner_id is not None and client.owner_id != owner_id):
            return False
        await s.execute(delete(OAuthToken).where(OAuthToken.client_id == client_id))
        await s.execute(delete(OAuthAuthorizationCode).where(OAuthAuthorizationCode.client_id == client_id))
        await s.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
        await s.commit()
    return True


async def list_all_oauth_clients(db: Database, owner_email: str | None = None) -> list[dict]:
    """Every client (``codetether oauth-clients list``), or one user's."""
    async with db.session() as s:
        query = select(OAuthClient).order_by(OAuthClient.created_at.desc())
        if owner_email is not None:
            owner = (
                await s.execute(select(User).where(User.email == owner_email.strip().lower()))
            ).scalar_one_or_none()
            if owner is None:
                raise OAuthClientError(f"no user {owner_email}")
            query = query.where(OAuthClient.owner_id == owner.id)
        return [client_to_dict(c) for c in (await s.execute(query)).scalars()]
