"""External OpenID Connect issuer (Keycloak and alike): its JWTs accepted as bearer tokens.

With ``CODETETHER_OIDC_ISSUER`` and ``CODETETHER_OIDC_AUDIENCE`` set, a bearer token that looks
like a JWT is verified with joserfc against the issuer's JWKS, found through
``{issuer}/.well-known/openid-configuration``. The key set is cached and fetched again when a token
names a ``kid`` the cache does not know (key rotation), at most once per ``refresh_interval``.
``iss``, ``aud``, ``exp`` (required) and ``nbf``/``iat`` are validated with a small leeway; without
``CODETETHER_OIDC_AUDIENCE`` no bearer JWT is accepted at all (any token the issuer made for any of
its clients would otherwise do), and the issuer then serves only the console's single sign-on. The
subject is mapped to a user, created on first sight (``source="oidc"``), with the token's ``email``
only when the issuer says ``email_verified``; the granted scopes are the token's ``scope`` claim
intersected with CodeTether's scopes. Installed as an
:class:`~codetether.api.auth.Authenticator` resolver by ``codetether/api/auth_extensions.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from codetether.api.auth import Principal
from codetether.core.db import Database
from codetether.core.ids import new_id
from codetether.core.models import User
from codetether.accounts.credentials import OAUTH_SCOPES
from codetether.accounts.service import AccountError, normalise_email

log = logging.getLogger("codetether.oidc")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 30


class OIDCResolver:
    def __init__(self, db: Database, issuer: str, audience: str | None, *, http: httpx.AsyncClient | None = None,
                 refresh_interval: float = 30.0) -> None:
        self.db = db
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._http = http
        self.refresh_interval = refresh_interval
        self._keys: KeySet | None = None
        self._jwks_uri: str | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10, follow_redirects=False)
        return self._http

    async def _fetch(self) -> None:
        http = await self._client()
        if self._jwks_uri is None:
            r = await http.get(f"{self.issuer}/.well-known/openid-configuration")
            r.raise_for_status()
            config = r.json()
            if config.get("issuer", "").rstrip("/") != self.issuer:
                raise ValueError(f"the discovery document names issuer {config.get('issuer')!r}")
            self._jwks_uri = config["jwks_uri"]
        r = await http.get(self._jwks_uri)
        r.raise_for_status()
        self._keys = KeySet.import_key_set(r.json())
        self._fetched_at = time.monotonic()

    async def keys(self, kid: str | None) -> KeySet | None:
        known = self._keys is not None and (kid is None or any(k.kid == kid for k in self._keys.keys))
        if known:
            return self._keys
        async with self._lock:
            known = self._keys is not None and (kid is None or any(k.kid == kid for k in self._keys.keys))
            stale = time.monotonic() - self._fetched_at >= self.refresh_interval
            if not known and (self._keys is None or stale):
                try:
                    await self._fetch()
                except (httpx.HTTPError, ValueError, KeyError, JoseError) as err:
                    log.warning("cannot fetch the OIDC issuer's keys: %s", err)
        return self._keys

    async def __call__(self, token: str) -> Principal | None:
        if token.count(".") != 2 or not self.audience:
            return None
        try:
            # Unverified, only to pick the key; the signature is checked by jwt.decode below.
            segment = token.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
            if not isinstance(header, dict):
                return None
        except (ValueError, UnicodeDecodeError):
            return None
        keys = await self.keys(header.get("kid"))
        if keys is None:
            return None
        try:
            verified = jwt.decode(token, keys, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS, iss={"essential": True, "value": self.issuer}, exp={"essential": True},
                sub={"essential": True}, aud={"essential": True, "value": self.audience},
            ).validate(verified.claims)
        except (JoseError, ValueError) as err:
            log.info("OIDC token refused: %s", err)
            return None
        claims = verified.claims
        user = await self._user(claims)
        if user is None:
            return None
        granted = str(claims.get("scope") or "").split()
        return Principal(
            user_id=user.id,
            email=user.email,
            tier=user.tier,
            scopes=[s for s in OAUTH_SCOPES if s in granted],
            auth_method="oidc",
            client_id=claims.get("azp") or claims.get("client_id"),
            extra={"subject": claims["sub"]},
        )

    async def user_for(self, claims: dict) -> User | None:
        """The user of verified claims (also the console's OIDC sign-in, ``codetether/api/console/oidc.py``)."""
        return await self._user(claims)

    async def _user(self, claims: dict) -> User | None:
        subject = f"{self.issuer}|{claims['sub']}"
        if len(subject) > 300:
            return None
        async with self.db.session() as s:
            user = (await s.execute(select(User).where(User.external_subject == subject))).scalar_one_or_none()
        if user is not None:
            return user
        # An address the issuer has not verified is only what the person typed there: it must not
        # claim that address here (and keep its owner from signing up with it).
        email = str(claims.get("email") or "").strip().lower() if claims.get("email_verified") is True else ""
        try:
            email = normalise_email(email)
        except AccountError:
            email = ""
        # Never attach an external identity to an existing local account by email: the issuer's
        # email claim is not proof of owning that account here.
        async with self.db.session() as s:
            taken = not email or (await s.execute(select(User.id).where(User.email == email))).first() is not None
        if taken:
            email = f"oidc-{hashlib.sha256(subject.encode()).hexdigest()[:16]}@users.codetether.invalid"
        user = User(id=new_id("usr"), email=email, tier="free", source="oidc", external_subject=subject)
        try:
            async with self.db.write_session() as s:
                s.add(user)
                await s.commit()
        except IntegrityError:  # created concurrently by another request
            async with self.db.session() as s:
                user = (await s.execute(select(User).where(User.external_subject == subject))).scalar_one_or_none()
        return user

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
