"""Registering partners (``codetether partners create``) and finding the partner behind a client.

A partner is a confidential OAuth client (``cts_`` secret, stored as a SHA-256 hash like every
client secret) owned by a service account of its own (a ``users`` row with ``source="partner"``
and an address under ``.invalid``, so nobody can sign in as it). Its client may be granted
``partner:manage`` and the task scopes; no other client can. Subject tokens are verified with the
partner's JWKS (``jwks_uri``) or an HS256 shared secret, sealed at rest
(``codetether/core/secretbox.py``) because verifying needs the secret itself.

Origins are where the partner's pages live: ``https`` only for a live partner; a test partner may
also use loopback origins (``http://localhost:PORT``, ``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select

from codetether.accounts.credentials import PARTNER_SCOPES, hash_token
from codetether.accounts.oauth_clients import generate_client_secret
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import iso, new_id
from codetether.core.models import OAuthClient, Partner, User
from codetether.core.netguard import UnsafeURL, check_url_shape
from codetether.core.secretbox import open_text, seal_text

# What a partner's client may be granted: managing its end users, and the task scopes it uses
# when it acts for them (an exchanged end-user token carries only the task scopes).
END_USER_SCOPES: tuple[str, ...] = ("tasks:read", "tasks:write", "messages:write")
# webhooks:manage: the partner subscribes its own account to end_user.* and sponsorship.* events.
# Acting for an end user keeps only END_USER_SCOPES, so it never reaches a person's webhooks.
PARTNER_ACCOUNT_SCOPES: tuple[str, ...] = ("webhooks:manage",)
PARTNER_CLIENT_SCOPES: tuple[str, ...] = (*sorted(PARTNER_SCOPES), *END_USER_SCOPES, *PARTNER_ACCOUNT_SCOPES)
SHARED_SECRET_PREFIX = "ctps_"
SERVICE_ACCOUNT_DOMAIN = "partners.codetether.invalid"
PARTNER_SOURCE = "partner"
MAX_ORIGINS = 20


class PartnerError(ServiceError, ValueError):
    """Bad input for a partner registration (shown to the caller as is)."""

    def __init__(self, message: str) -> None:
        super().__init__(422, "invalid_partner", message)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_origin(origin: str, *, test: bool) -> str:
    """A web origin (scheme, host, optional port; nothing else): ``https``, or loopback ``http``
    for a test partner. Returns it normalised (lower case, no trailing slash)."""
    raw = origin.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise PartnerError(f"origin {origin!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PartnerError(f"origin {origin!r} must be an absolute URL such as https://app.example.com")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise PartnerError(f"origin {origin!r} must be scheme://host[:port] only (no path, query or credentials)")
    if parts.scheme == "http":
        if not test:
            raise PartnerError(f"origin {origin!r}: a live partner's origins must use https")
        if not is_loopback_host(parts.hostname):
            raise PartnerError(f"origin {origin!r}: http is allowed only for loopback hosts (localhost, 127.0.0.1)")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def check_jwks_uri(uri: str, *, test: bool) -> str:
    uri = uri.strip()
    host = urlsplit(uri).hostname
    try:
        check_url_shape(uri, allow_private=test and is_loopback_host(host))
    except (UnsafeURL, ValueError) as err:
        raise PartnerError(f"jwks_uri: {err}".replace("webhook URLs", "it")) from None
    if len(uri) > 2000:
        raise PartnerError("jwks_uri is too long")
    return uri


def partner_to_dict(p: Partner) -> dict:
    return {
        "partner_id": p.id,
        "name": p.name,
        "client_id": p.client_id,
        "origins": list(p.origins or []),
        "jwks_uri": p.jwks_uri,
        "shared_secret": p.shared_secret is not None,
        "test": bool(p.is_test),
        "created_at": iso(p.created_at),
    }


async def create_partner(
    db: Database,
    settings: Settings,
    *,
    name: str,
    origins: list[str],
    jwks_uri: str | None = None,
    shared_secret: bool = False,
    test: bool = False,
    tier: str = "pro",
) -> dict:
    """Registers a partner; returns ``{partner_id, client_id, client_secret, shared_secret?}``
    (the secrets are shown once) with its description."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise PartnerError("the partner name must have 1 to 200 characters")
    if (jwks_uri is None) == (not shared_secret):
        raise PartnerError("give exactly one of --jwks-uri URL and --shared-secret")
    checked: list[str] = []
    for origin in origins or []:
        o = check_origin(origin, test=test)
        if o not in checked:
            checked.append(o)
    if not checked:
        raise PartnerError("at least one origin is required")
    if len(checked) > MAX_ORIGINS:
        raise PartnerError(f"at most {MAX_ORIGINS} origins")
    uri = check_jwks_uri(jwks_uri, test=test) if jwks_uri is not None else None
    hs_secret = SHARED_SECRET_PREFIX + secrets.token_urlsafe(32) if shared_secret else None
    client_secret = generate_client_secret()
    partner_id = new_id("ptn")
    async with db.write_session() as s:
        user = User(id=new_id("usr"), email=f"{partner_id}@{SERVICE_ACCOUNT_DOMAIN}", tier=tier,
                    source=PARTNER_SOURCE)
        client = OAuthClient(client_id=new_id("cli"), client_secret_hash=hash_token(client_secret), name=name,
                             owner_id=user.id, redirect_uris=[], scopes=list(PARTNER_CLIENT_SCOPES), is_public=False)
        partner = Partner(id=partner_id, name=name, client_id=client.client_id, user_id=user.id, origins=checked,
                          jwks_uri=uri, shared_secret=seal_text(settings, hs_secret) if hs_secret else None,
                          is_test=test)
        s.add(user)
        await s.flush()
        s.add(client)
        await s.flush()
        s.add(partner)
        await s.commit()
    out = {**partner_to_dict(partner), "client_secret": client_secret}
    if hs_secret is not None:
        out["shared_secret"] = hs_secret
    else:
        out.pop("shared_secret")
    return out


async def partner_for_client(db: Database, client_id: str | None) -> Partner | None:
    if not client_id:
        return None
    async with db.session() as s:
        return (await s.execute(select(Partner).where(Partner.client_id == client_id))).scalar_one_or_none()


async def list_partners(db: Database) -> list[dict]:
    async with db.session() as s:
        rows = (await s.execute(select(Partner).order_by(Partner.created_at.desc()))).scalars()
        return [partner_to_dict(p) for p in rows]


def shared_secret_of(settings: Settings, partner: Partner) -> str | None:
    return open_text(settings, partner.shared_secret) if partner.shared_secret else None
