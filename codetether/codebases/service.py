"""Codebases: the repositories tasks work on. The one copy of their rules, used by
``/v1/automation/codebases`` (``codetether/api/rest/routes/codebases.py``), ``codetether codebases`` and the
worker (``codetether/agent/workspace/activities.py`` reads the credentials back).

A codebase has a name, a ``repository_url`` (checked by :mod:`codetether.codebases.repourls`), a default ``ref``,
a ``push`` policy (``none`` | ``branch`` | ``pull_request``) and optional credentials, sealed with
:mod:`codetether.core.secretbox` and never returned (``has_credentials`` says whether there are some).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from codetether.accounts.service import get_user_by_email
from codetether.core.config import Settings
from codetether.core.db import Database, load_owned
from codetether.core.errors import ServiceError, not_found
from codetether.core.ids import iso, new_id, utcnow
from codetether.core.models import Codebase
from codetether.core.netguard import Resolver, system_resolver
from codetether.codebases.repourls import InvalidRepositoryURL, check_repository_url
from codetether.core.secretbox import SecretBoxUnavailable, seal, unseal

PUSH_POLICIES = ("none", "branch", "pull_request")
CREDENTIAL_TYPES = ("https_token", "ssh_key")
_UNSET: Any = object()


class CodebaseError(ServiceError, ValueError):
    """A rule was broken (422); ``code`` is the stable problem code, ``field`` the offending field."""

    def __init__(self, message: str, code: str = "invalid_codebase", field: str | None = None) -> None:
        super().__init__(422, code, message, field=field)


@dataclass
class Credentials:
    type: str
    token: str | None = None
    private_key: str | None = None


def codebase_to_dict(c: Codebase) -> dict:
    return {
        "id": c.id,
        "codebase_id": c.id,
        "name": c.name,
        "description": c.description,
        "repository_url": c.repository_url,
        "ref": c.ref,
        "push": c.push or "none",
        "has_credentials": bool(c.credentials_sealed),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at or c.created_at),
    }


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise CodebaseError("the name must have 1 to 200 characters", field="name")
    return name


def _check_ref(ref: str | None) -> str | None:
    if ref is None or ref == "":
        return None
    if len(ref) > 200 or ref.startswith("-") or any(c in ref for c in " ~^:?*[\\\x7f") or ".." in ref or any(ord(c) < 32 for c in ref):
        raise CodebaseError("ref must be a branch, tag or commit name", code="invalid_ref", field="ref")
    return ref


def _check_push(push: str | None) -> str:
    push = push or "none"
    if push not in PUSH_POLICIES:
        raise CodebaseError(f"push must be one of {', '.join(PUSH_POLICIES)}", code="invalid_push_policy", field="push")
    return push


def _seal_credentials(settings: Settings, creds: Credentials | None) -> str | None:
    if creds is None:
        return None
    if creds.type not in CREDENTIAL_TYPES:
        raise CodebaseError("credentials.type must be https_token or ssh_key", code="invalid_credentials", field="credentials")
    secret = creds.token if creds.type == "https_token" else creds.private_key
    if not secret or not secret.strip() or len(secret) > 20_000:
        raise CodebaseError("the credential value is missing or too long", code="invalid_credentials", field="credentials")
    value = {"type": creds.type, "token" if creds.type == "https_token" else "private_key": secret}
    try:
        return seal(settings, value)
    except SecretBoxUnavailable as err:
        raise CodebaseError(str(err), code="credentials_unavailable", field="credentials") from None


async def _check_url(settings: Settings, url: str | None, resolver: Resolver) -> str:
    if url is None:
        raise CodebaseError("repository_url is required", code="invalid_repository_url", field="repository_url")
    try:
        await check_repository_url(
            url, allow_local=settings.codebase_allow_local, allow_private=settings.webhook_allow_private, resolver=resolver
        )
    except InvalidRepositoryURL as err:
        raise CodebaseError(str(err), code="invalid_repository_url", field="repository_url") from None
    return url


async def create_codebase(
    db: Database,
    settings: Settings,
    user_id: str,
    *,
    name: str,
    repository_url: str | None,
    ref: str | None = None,
    push: str | None = None,
    description: str | None = None,
    credentials: Credentials | None = None,
    resolver: Resolver = system_resolver,
) -> Codebase:
    name = _check_name(name)
    ref = _check_ref(ref)
    push = _check_push(push)
    url = await _check_url(settings, repository_url, resolver)
    sealed = _seal_credentials(settings, credentials)
    now = utcnow()
    row = Codebase(
        id=new_id("cb"),
        user_id=user_id,
        name=name,
        description=description or None,
        repository_url=url,
        ref=ref,
        push=push,
        credentials_sealed=sealed,
        created_at=now,
        updated_at=now,
    )
    async with db.write_session() as s:
        s.add(row)
        await s.commit()
    return row


async def create_codebase_for_email(db: Database, settings: Settings, email: str, **kwargs) -> Codebase:
    user = await get_user_by_email(db, email)
    if user is None:
        raise CodebaseError(f"no user {email}", code="unknown_user")
    return await create_codebase(db, settings, user.id, **kwargs)


async def load_codebase(db: Database, user_id: str, codebase_id: str) -> Codebase:
    """The user's codebase, or 404 ``codebase_not_found`` (also for another user's)."""
    return await load_owned(db, Codebase, codebase_id, lambda c: c.user_id == user_id, not_found("codebase", codebase_id))


async def list_codebases(db: Database, user_id: str) -> list[Codebase]:
    async with db.session() as s:
        rows = await s.execute(
            select(Codebase).where(Codebase.user_id == user_id).order_by(Codebase.created_at.desc(), Codebase.id.desc())
        )
        return list(rows.scalars())


async def list_codebases_for_email(db: Database, email: str) -> list[Codebase]:
    user = await get_user_by_email(db, email)
    if user is None:
        raise CodebaseError(f"no user {email}", code="unknown_user")
    return await list_codebases(db, user.id)


async def update_codebase(
    db: Database,
    settings: Settings,
    user_id: str,
    codebase_id: str,
    *,
    name: str | None = None,
    repository_url: str | None = None,
    ref: Any = _UNSET,
    push: str | None = None,
    description: Any = _UNSET,
    credentials: Any = _UNSET,
    resolver: Resolver = system_resolver,
) -> Codebase | None:
    """Changes the given fields (all checked before anything is written); None if not found.
    ``credentials=None`` removes stored credentials."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _check_name(name)
    if repository_url is not None:
        values["repository_url"] = await _check_url(settings, repository_url, resolver)
    if ref is not _UNSET:
        values["ref"] = _check_ref(ref)
    if push is not None:
        values["push"] = _check_push(push)
    if description is not _UNSET:
        values["description"] = description or None
    if credentials is not _UNSET:
        values["credentials_sealed"] = _seal_credentials(settings, credentials)
    async with db.write_session() as s:
        row = await s.get(Codebase, codebase_id)
        if row is None or row.user_id != user_id:
            return None
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        await s.commit()
        await s.refresh(row)
        return row


async def delete_codebase(db: Database, user_id: str, codebase_id: str) -> bool:
    async with db.write_session() as s:
        result = await s.execute(delete(Codebase).where(Codebase.id == codebase_id, Codebase.user_id == user_id))
        await s.commit()
    return bool(result.rowcount)


def codebase_credentials(settings: Settings, row: Codebase) -> Credentials | None:
    """The decrypted credentials (worker side only)."""
    if not row.credentials_sealed:
        return None
    value = unseal(settings, row.credentials_sealed)
    return Credentials(type=value["type"], token=value.get("token"), private_key=value.get("private_key"))
