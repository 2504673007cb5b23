"""Users and API keys: the operations behind ``codetether users/keys`` and ``/v1/api-keys``."""

from __future__ import annotations

import re

from sqlalchemy import select

from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import new_id, utcnow
from codetether.core.models import ApiKey, User
from codetether.accounts.credentials import ALL_SCOPES, generate_api_key, hash_password, hash_token, key_display_prefix

# Requests per minute and tasks running at once, per tier (None: unlimited).
TIER_RATE_LIMITS: dict[str, int | None] = {"free": 60, "pro": 300, "enterprise": None}
TIER_CONCURRENCY: dict[str, int | None] = {"free": 5, "pro": 25, "enterprise": None}
TIERS = tuple(TIER_RATE_LIMITS)


class AccountError(ServiceError, ValueError):
    """An account cannot be made as asked (422)."""

    def __init__(self, message: str, code: str = "invalid_account", field: str | None = None) -> None:
        super().__init__(422, code, message, field=field)


# One plain RFC 5322 addr-spec: a dot-atom local part and a DNS name. Display names
# ("Name <a@b>"), lists ("a@b, c@d"), quoted local parts, comments and any whitespace or control
# character are refused, so an address is always one mailbox and can never carry a header.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
INVALID_EMAIL = "invalid_email"


def normalise_email(value: str | None) -> str:
    """``value`` as one lower-case mailbox address, or an :class:`AccountError` (422 ``invalid_email``)."""
    email = (value or "").strip().lower()
    local, at, domain = email.rpartition("@")
    if (not at or len(email) > 254 or len(local) > 64
            or not _LOCAL_PART.fullmatch(local) or not _DOMAIN.fullmatch(domain)):
        raise AccountError("Enter one email address, like name@example.com.", INVALID_EMAIL, "email")
    return email


async def create_user(db: Database, email: str, *, tier: str = "free", password: str | None = None) -> User:
    email = normalise_email(email)
    if tier not in TIERS:
        raise AccountError(f"tier must be one of {', '.join(TIERS)}")
    async with db.session() as s:
        if (await s.execute(select(User).where(User.email == email))).scalar_one_or_none() is not None:
            raise AccountError(f"a user {email} already exists")
        user = User(
            id=new_id("usr"),
            email=email,
            tier=tier,
            password_hash=hash_password(password) if password else None,
        )
        s.add(user)
        await s.commit()
        return user


async def get_user_by_email(db: Database, email: str) -> User | None:
    async with db.session() as s:
        return (await s.execute(select(User).where(User.email == email.strip().lower()))).scalar_one_or_none()


async def create_api_key(
    db: Database, user_id: str, *, name: str = "default", scopes: list[str] | None = None
) -> tuple[ApiKey, str]:
    """Returns the stored key row and the key itself (shown once, never stored)."""
    secret = generate_api_key()
    row = ApiKey(
        id=new_id("key"),
        user_id=user_id,
        name=name,
        prefix=key_display_prefix(secret),
        key_hash=hash_token(secret),
        scopes=list(scopes if scopes is not None else ALL_SCOPES),
        created_at=utcnow(),
    )
    async with db.session() as s:
        s.add(row)
        await s.commit()
    return row, secret


async def list_api_keys(db: Database, user_id: str) -> list[ApiKey]:
    async with db.session() as s:
        rows = await s.execute(
            select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at.desc())
        )
        return list(rows.scalars())


async def revoke_api_key(db: Database, user_id: str, key_id: str) -> bool:
    async with db.session() as s:
        key = await s.get(ApiKey, key_id)
        if key is None or key.user_id != user_id or key.revoked_at is not None:
            return False
        key.revoked_at = utcnow()
        await s.commit()
        return True
