"""Subject tokens: the JWTs a partner signs for one of its users and exchanges at ``/oauth/token``
(RFC 8693, ``subject_token_type=urn:ietf:params:oauth:token-type:jwt``).

Claims: ``iss`` = the partner's client id, ``sub`` = the partner's id for its user, ``aud`` = this
service's issuer, ``exp`` (at most :data:`MAX_LIFETIME` ahead), ``iat``, ``jti``; optional
``email``, ``given_name``, ``family_name``, ``workspace``. Signed with a key of the partner's JWKS
(asymmetric algorithms only) or HS256 with its shared secret.

The JWKS is fetched from the partner's ``jwks_uri`` under the webhook SSRF rules
(``codetether/core/netguard.py``: public addresses only, no redirects; a test partner may use a
loopback host), cached for :data:`JWKS_TTL`, and fetched again when a token names a ``kid`` the
cache does not know (key rotation), at most once per :data:`JWKS_REFETCH_INTERVAL` per partner.
Every ``jti`` is kept until its token expires (``partner_subject_tokens``): a replay is refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import utcnow
from codetether.core.models import Partner, PartnerSubjectToken
from codetether.core.netguard import webhook_http_client
from codetether.partners.registry import is_loopback_host, shared_secret_of

log = logging.getLogger("codetether.partners")

MAX_LIFETIME = timedelta(minutes=5)
LEEWAY_SECONDS = 30
JWKS_TTL = 3600.0
JWKS_REFETCH_INTERVAL = 30.0
JWKS_MAX_BYTES = 256 * 1024
ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
MAX_CLAIM_LENGTH = 200


class InvalidSubjectToken(Exception):
    """The subject token cannot be exchanged (``invalid_grant``); the message says why."""


class JwksCache:
    """Each partner's key set, fetched on demand; one per process."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._keys: dict[str, tuple[str, KeySet, float]] = {}
        self._attempts: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _cached(self, partner: Partner, kid: str | None) -> KeySet | None:
        entry = self._keys.get(partner.id)
        if entry is None or entry[0] != partner.jwks_uri or time.monotonic() - entry[2] > JWKS_TTL:
            return None
        keys = entry[1]
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            return None
        return keys

    async def keys(self, partner: Partner, kid: str | None) -> KeySet | None:
        found = self._cached(partner, kid)
        if found is not None:
            return found
        async with self._locks.setdefault(partner.id, asyncio.Lock()):
            found = self._cached(partner, kid)
            if found is not None:
                return found
            last = self._attempts.get(partner.id)
            if last is None or time.monotonic() - last >= JWKS_REFETCH_INTERVAL:
                self._attempts[partner.id] = time.monotonic()
                try:
                    self._keys[partner.id] = (partner.jwks_uri or "", await self._fetch(partner), time.monotonic())
                except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as err:
                    log.warning("cannot fetch the JWKS of partner %s: %s", partner.id, err)
        entry = self._keys.get(partner.id)
        return entry[1] if entry is not None and entry[0] == partner.jwks_uri else None

    async def _fetch(self, partner: Partner) -> KeySet:
        uri = partner.jwks_uri or ""
        loopback_ok = bool(partner.is_test) and is_loopback_host(urlsplit(uri).hostname)
        async with webhook_http_client(allow_private=loopback_ok, timeout=self.timeout) as http:
            r = await http.get(uri, headers={"Accept": "application/json"})
        r.raise_for_status()
        if len(r.content) > JWKS_MAX_BYTES:
            raise ValueError("the JWKS is too large")
        data = r.json()
        keys = [k for k in data.get("keys", []) if isinstance(k, dict) and k.get("kty") != "oct"]
        return KeySet.import_key_set({"keys": keys})


def _header(token: str) -> dict:
    if token.count(".") != 2:
        raise InvalidSubjectToken("the subject_token is not a JWS compact JWT")
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise InvalidSubjectToken("the subject_token has a malformed header") from None
    if not isinstance(header, dict):
        raise InvalidSubjectToken("the subject_token has a malformed header")
    return header


def _check_claims(claims: dict, partner: Partner, issuer: str, now: int) -> None:
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != partner.client_id:
        raise InvalidSubjectToken("iss must be the partner's client_id")
    if issuer.rstrip("/") not in [a.rstrip("/") for a in audiences if isinstance(a, str)]:
        raise InvalidSubjectToken(f"aud must be this service's issuer ({issuer})")
    for name in ("sub", "jti"):
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
            raise InvalidSubjectToken(f"{name} must be a string of 1 to {MAX_CLAIM_LENGTH} characters")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidSubjectToken("exp is required")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidSubjectToken("iat is required")
    if exp <= now - LEEWAY_SECONDS:
        raise InvalidSubjectToken("the subject_token has expired")
    if exp > now + MAX_LIFETIME.total_seconds() + LEEWAY_SECONDS:
        raise InvalidSubjectToken(f"exp may be at most {int(MAX_LIFETIME.total_seconds())} seconds ahead")
    if iat > now + LEEWAY_SECONDS:
        raise InvalidSubjectToken("iat is in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY_SECONDS:
        raise InvalidSubjectToken("the subject_token is not valid yet (nbf)")
    for name in ("email", "given_name", "family_name", "workspace"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_CLAIM_LENGTH):
            raise InvalidSubjectToken(f"{name} must be a string of at most {MAX_CLAIM_LENGTH} characters")


async def verify_subject_token(settings: Settings, cache: JwksCache, partner: Partner, token: str,
                               issuer: str) -> dict:
    """The verified claims of ``token``; raises :class:`InvalidSubjectToken`. Does not record the
    ``jti`` (see :func:`claim_jti`)."""
    header = _header(token)
    alg = header.get("alg")
    if alg == "HS256":
        secret = shared_secret_of(settings, partner)
        if secret is None:
            raise InvalidSubjectToken("this partner signs with its JWKS, not a shared secret")
        key: OctKey | KeySet = OctKey.import_key(secret)
        algorithms = ["HS256"]
    elif alg in ASYMMETRIC_ALGORITHMS:
        if not partner.jwks_uri:
            raise InvalidSubjectToken("this partner signs with its shared secret (HS256)")
        keys = await cache.keys(partner, header.get("kid"))
        if keys is None:
            raise InvalidSubjectToken("the partner's JWKS could not be fetched")
        key, algorithms = keys, [alg]
    else:
        raise InvalidSubjectToken(f"unsupported alg {alg!r}")
    try:
        claims = jwt.decode(token, key, algorithms=algorithms).claims
    except (JoseError, ValueError):
        raise InvalidSubjectToken("the subject_token's signature does not verify") from None
    _check_claims(claims, partner, issuer, int(time.time()))
    return claims


async def claim_jti(db: Database, partner: Partner, jti: str, exp: float) -> None:
    """Records ``jti`` until its token expires; raises :class:`InvalidSubjectToken` if it was
    already used. Expired entries are swept on the way."""
    now = utcnow()
    expires = datetime.fromtimestamp(exp + LEEWAY_SECONDS, tz=timezone.utc)
    async with db.write_session() as s:
        await s.execute(delete(PartnerSubjectToken).where(PartnerSubjectToken.expires_at < now))
        s.add(PartnerSubjectToken(partner_id=partner.id, jti=jti, expires_at=expires))
        try:
            await s.commit()
        except IntegrityError:
            await s.rollback()
            raise InvalidSubjectToken("the subject_token was already used (jti replay)") from None
