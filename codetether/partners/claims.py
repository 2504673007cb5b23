"""Claim links: how a partner's end user becomes a full CodeTether account that keeps its tasks.

``POST /v1/partner/end_users/{id}/account_links`` (``codetether/api/rest/routes/partners.py``)
makes a link like Stripe's account links: single use, valid for five minutes, with the partner's
``return_url`` (where the browser goes after the claim) and ``refresh_url`` (where a stale or used
link sends it, so the partner can make a fresh one). Only the token's SHA-256 is stored.

The page behind the link (``/console/claim/<token>``, ``codetether/api/console/claim.py``) offers
two ways, both here:

- :func:`claim_new_account`: an email and a password. The end user's own account gets them and is
  a full account from then on. The address must be free (an existing account is claimed by
  signing in instead) and follows the open sign-up's rules: one plain mailbox, and with SMTP
  configured it is set only once the emailed confirmation is followed with the same password
  (:func:`start_verified_claim`, :func:`complete_verified_claim`), so nobody can claim with
  another person's address.
- :func:`claim_into_account`: signing in to an existing account with the console's own sign-in
  check (throttling and lockout included); the end user's data moves into that account
  (``codetether/partners/merge.py``) and the end user points at it.

Either way the link is spent and the end user's status becomes ``claimed`` in one transaction: of
two uses at once, one wins and the other finds the link used.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from codetether.accounts.credentials import hash_password, hash_token, verify_password
from codetether.accounts.service import get_user_by_email, normalise_email
from codetether.accounts.signin import authenticate_password
from codetether.accounts.websessions import check_new_password
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, utcnow
from codetether.core.models import ConsoleToken, Partner, PartnerAccountLink, PartnerEndUser, PartnerWorkspace, User
from codetether.partners.end_users import CLAIMED, PROVISIONED, end_user_to_dict, partners_end_user
from codetether.partners.merge import move_account_data

CLAIM = "claim"
CLAIM_LINK_TTL = timedelta(minutes=5)
VERIFY_CLAIM_TTL = timedelta(hours=24)
# A console one-time link (console_tokens.purpose) that confirms the address of a claim.
PURPOSE_VERIFY_CLAIM = "verify_claim"
LOCAL_SOURCE = "local"


class StaleLink(Exception):
    """The link is used, expired or its end user already claimed: send the browser to ``refresh_url``."""


@dataclass
class ClaimLink:
    link: PartnerAccountLink
    end_user: PartnerEndUser
    partner: Partner

    def usable(self, now: datetime | None = None) -> bool:
        return (self.link.used_at is None and as_utc(self.link.expires_at) > (now or utcnow())
                and self.end_user.status == PROVISIONED)


@dataclass
class Claimed:
    """A finished claim: the account the person is signed in to, and the end user as the API shows it."""

    user_id: str
    end_user: dict
    partner: Partner


def partner_url(partner: Partner, url: str, field: str) -> str:
    """``url`` if it is an absolute http(s) URL on one of the partner's registered origins."""
    raw = (url or "").strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username
            or parts.password or len(raw) > 2000):
        raise ServiceError(422, "invalid_url", f"{field} must be an absolute http(s) URL", field=field)
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    if origin not in (partner.origins or []):
        raise ServiceError(422, "url_not_allowed",
                           f"{field} must be on one of your registered origins ({', '.join(partner.origins or [])})",
                           field=field)
    return raw


async def create_claim_link(db: Database, partner: Partner, end_user_id: str, *, return_url: str,
                            refresh_url: str) -> tuple[str, datetime]:
    """A new claim link's token and expiry for the partner's end user (404 if it is not theirs,
    409 if it is claimed already)."""
    return_url = partner_url(partner, return_url, "return_url")
    refresh_url = partner_url(partner, refresh_url, "refresh_url")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write_session() as s:
        eu = await partners_end_user(s, partner.id, end_user_id)
        if eu.status != PROVISIONED:
            raise ServiceError(409, "end_user_claimed", f"end user {end_user_id!r} has already claimed its account")
        link = PartnerAccountLink(token_hash=hash_token(token), end_user_id=eu.id, type=CLAIM, return_url=return_url,
                                  refresh_url=refresh_url, created_at=now, expires_at=now + CLAIM_LINK_TTL)
        s.add(link)
        await s.commit()
    return token, link.expires_at


async def open_link(db: Database, token: str) -> ClaimLink | None:
    """The link behind ``token`` whatever its state, or None if there is no such link."""
    async with db.session() as s:
        row = (await s.execute(
            select(PartnerAccountLink, PartnerEndUser, Partner)
            .join(PartnerEndUser, PartnerEndUser.id == PartnerAccountLink.end_user_id)
            .join(Partner, Partner.id == PartnerEndUser.partner_id)
            .where(PartnerAccountLink.token_hash == hash_token(token))
        )).first()
    return ClaimLink(*row) if row is not None else None


async def _spend(s, link: ClaimLink, now: datetime, *, claim: bool = True) -> None:
    """Spends the link (and with ``claim`` marks the end user claimed) in the caller's
    transaction; raises :class:`StaleLink` if another use got there first."""
    res = await s.execute(update(PartnerAccountLink).where(
        PartnerAccountLink.token_hash == link.link.token_hash, PartnerAccountLink.used_at.is_(None),
        PartnerAccountLink.expires_at > now).values(used_at=now))
    if res.rowcount != 1:
        raise StaleLink
    if claim:
        res = await s.execute(update(PartnerEndUser).where(
            PartnerEndUser.id == link.end_user.id, PartnerEndUser.status == PROVISIONED,
        ).values(status=CLAIMED, claimed_at=now, updated_at=now))
        if res.rowcount != 1:
            raise StaleLink


async def _end_user(s, end_user_id: str) -> dict:
    eu = await s.get(PartnerEndUser, end_user_id)
    return end_user_to_dict(eu, await s.get(PartnerWorkspace, eu.workspace_id))


def address_taken() -> ServiceError:
    return ServiceError(422, "email_taken", "An account with this address already exists. If it is yours, "
                                            "sign in to it instead: your tasks will be added to it.", field="email")


async def _free_address(db: Database, email: str) -> str:
    email = normalise_email(email)
    if await get_user_by_email(db, email) is not None:
        raise address_taken()
    return email


async def _set_credentials(s, user_id: str, email: str, password_hash: str) -> None:
    await s.execute(update(User).where(User.id == user_id).values(
        email=email, password_hash=password_hash, source=LOCAL_SOURCE))
    await s.flush()  # the address is unique: a concurrent sign-up with it fails here


async def claim_new_account(db: Database, link: ClaimLink, email: str, password: str) -> Claimed:
    """Gives the end user's own account ``email`` and ``password`` at once (no SMTP to confirm
    the address with, as for an open sign-up without SMTP)."""
    email = await _free_address(db, email)
    check_new_password(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with db.write_session() as s:
        try:
            await _spend(s, link, utcnow())
            await _set_credentials(s, link.end_user.user_id, email, password_hash)
            await s.commit()
        except IntegrityError:
            await s.rollback()
            raise address_taken() from None
        except StaleLink:
            await s.rollback()
            raise
        return Claimed(link.end_user.user_id, await _end_user(s, link.end_user.id), link.partner)


async def start_verified_claim(db: Database, link: ClaimLink, email: str, password: str) -> str:
    """With SMTP: spends the link and returns the token of a confirmation link for ``email``;
    the claim happens when it is followed (:func:`complete_verified_claim`)."""
    email = await _free_address(db, email)
    check_new_password(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write_session() as s:
        try:
            await _spend(s, link, now, claim=False)
        except StaleLink:
            await s.rollback()
            raise
        s.add(ConsoleToken(token_hash=hash_token(token), purpose=PURPOSE_VERIFY_CLAIM, user_id=link.end_user.user_id,
                           email=email, password_hash=password_hash, created_at=now, expires_at=now + VERIFY_CLAIM_TTL))
        await s.commit()
    return token


async def is_claim_confirmation(db: Database, token: str) -> bool:
    async with db.session() as s:
        row = await s.get(ConsoleToken, hash_token(token))
    return row is not None and row.purpose == PURPOSE_VERIFY_CLAIM


async def complete_verified_claim(db: Database, token: str, password: str) -> Claimed | None:
    """Follows a claim's confirmation link: the password chosen on the claim page must be entered
    again (as for a sign-up: the link proves the address, the password the person). None if the
    link is used or expired, or the end user was claimed or removed meanwhile."""
    digest = hash_token(token)
    async with db.session() as s:
        pending = await s.get(ConsoleToken, digest)
    if (pending is None or pending.purpose != PURPOSE_VERIFY_CLAIM or pending.used_at is not None
            or as_utc(pending.expires_at) <= utcnow() or not pending.user_id or not pending.email):
        return None
    if not await asyncio.to_thread(verify_password, pending.password_hash, password or ""):
        raise ServiceError(422, "signup_password_mismatch",
                           "This is not the password chosen when the account was claimed.", field="password")
    now = utcnow()
    async with db.write_session() as s:
        res = await s.execute(update(ConsoleToken).where(
            ConsoleToken.token_hash == digest, ConsoleToken.used_at.is_(None), ConsoleToken.expires_at > now,
        ).values(used_at=now))
        eu = (await s.execute(select(PartnerEndUser).where(
            PartnerEndUser.user_id == pending.user_id, PartnerEndUser.status == PROVISIONED))).scalar_one_or_none()
        if res.rowcount != 1 or eu is None:
            await s.rollback()
            return None
        try:
            await _set_credentials(s, pending.user_id, pending.email, pending.password_hash)
        except IntegrityError:
            await s.rollback()
            raise address_taken() from None
        eu.status, eu.claimed_at, eu.updated_at = CLAIMED, now, now
        await s.commit()
        partner = await s.get(Partner, eu.partner_id)
        return Claimed(pending.user_id, await _end_user(s, eu.id), partner)


async def claim_into_account(db: Database, settings: Settings, link: ClaimLink, email: str, password: str,
                             ip: str | None) -> Claimed:
    """Signs in to an existing account (the console's check: 401 wrong, 429 locked) and moves the
    end user into it."""
    user = await authenticate_password(db, settings, email, password, ip)
    old_user_id = link.end_user.user_id
    async with db.write_session() as s:
        try:
            await _spend(s, link, utcnow())
        except StaleLink:
            await s.rollback()
            raise
        if user.id != old_user_id:
            await move_account_data(s, old_user_id, user.id)
            await s.execute(update(PartnerEndUser).where(PartnerEndUser.id == link.end_user.id)
                            .values(user_id=user.id))
        await s.commit()
        return Claimed(user.id, await _end_user(s, link.end_user.id), link.partner)
