"""A partner's end users and workspaces (``/v1/partner/end_users``, the token exchange).

An end user is the partner's user as CodeTether sees it: ``eu_...``, unique per partner by the
partner's ``external_id``, and backed by a real ``users`` row (``source="partner"``, an address
under ``.invalid`` and no password), so tasks, limits and the console work for it unchanged. The
email the partner gives is kept on the end user and never matched against existing accounts: a
partner cannot reach someone's own account by naming their address. Every end user is in a
workspace (``ws_...``): the partner's ``workspace_external_id``, or one of its own.

Every lookup is scoped to the partner: another partner's end user does not exist for it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client

from codetether.core.db import Database
from codetether.core.errors import ServiceError
from codetether.core.ids import as_utc, iso, new_id, parse_iso, utcnow
from codetether.core.models import OAuthToken, Partner, PartnerEndUser, PartnerSponsorship, PartnerWorkspace, User
from codetether.partners.registry import PARTNER_SOURCE
from codetether.tasks.bulk_cancel import cancel_tasks
from codetether.tasks.service import TaskFilter

END_USER_DOMAIN = "end-users.codetether.invalid"
PROVISIONED = "provisioned"
CLAIMED = "claimed"
END_USER_STATUSES = (PROVISIONED, CLAIMED)
Status = Literal["provisioned", "claimed"]
UNSET = object()


def not_found(end_user_id: str) -> ServiceError:
    return ServiceError(404, "end_user_not_found", f"no end user {end_user_id!r}")


@dataclass
class Provisioned:
    end_user: dict
    created: bool
    user_id: str


@dataclass
class EndUserProfile:
    """What the partner says about its user; ``None`` leaves a field as it is."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


def end_user_to_dict(eu: PartnerEndUser, ws: PartnerWorkspace) -> dict:
    return {
        "end_user_id": eu.id,
        "external_id": eu.external_id,
        "workspace_id": ws.id,
        "workspace_external_id": ws.external_id,
        "status": eu.status,
        "email": eu.email,
        "first_name": eu.first_name,
        "last_name": eu.last_name,
        "created_at": iso(eu.created_at),
        "updated_at": iso(eu.updated_at),
        "claimed_at": iso(eu.claimed_at),
    }


async def _workspace(s, partner: Partner, external_id: str | None) -> PartnerWorkspace:
    if external_id is not None:
        found = (await s.execute(select(PartnerWorkspace).where(
            PartnerWorkspace.partner_id == partner.id, PartnerWorkspace.external_id == external_id))).scalar_one_or_none()
        if found is not None:
            return found
    ws = PartnerWorkspace(id=new_id("ws"), partner_id=partner.id, external_id=external_id, created_at=utcnow())
    s.add(ws)
    await s.flush()
    return ws


async def partners_end_user(s, partner_id: str, end_user_id: str) -> PartnerEndUser:
    """The partner's end user in session ``s``; another partner's is ``404 end_user_not_found``."""
    eu = (await s.execute(select(PartnerEndUser).where(
        PartnerEndUser.partner_id == partner_id, PartnerEndUser.id == end_user_id))).scalar_one_or_none()
    if eu is None:
        raise not_found(end_user_id)
    return eu


async def _find(s, partner_id: str, *, external_id: str | None = None, end_user_id: str | None = None):
    q = select(PartnerEndUser, PartnerWorkspace).join(PartnerWorkspace, PartnerWorkspace.id == PartnerEndUser.workspace_id)
    q = q.where(PartnerEndUser.partner_id == partner_id)
    q = q.where(PartnerEndUser.external_id == external_id) if external_id is not None else q.where(
        PartnerEndUser.id == end_user_id)
    return (await s.execute(q)).first()


async def provision(db: Database, partner: Partner, external_id: str, profile: EndUserProfile, *,
                    workspace_external_id: str | None = None, refresh_profile: bool = False) -> Provisioned:
    """The partner's end user with this ``external_id``, created if new; says whether it was
    created. With ``refresh_profile`` (the token exchange) the profile fields given replace the
    stored ones; otherwise an existing end user is returned as it is (idempotent create)."""
    for attempt in range(2):
        async with db.write_session() as s:
            found = await _find(s, partner.id, external_id=external_id)
            if found is not None:
                eu, ws = found
                if refresh_profile and _apply(eu, profile):
                    eu.updated_at = utcnow()
                    await s.commit()
                return Provisioned(end_user_to_dict(eu, ws), False, eu.user_id)
            tier = (await s.get(User, partner.user_id)).tier
            try:
                ws = await _workspace(s, partner, workspace_external_id)
                eu_id, now = new_id("eu"), utcnow()
                user = User(id=new_id("usr"), email=f"{eu_id}@{END_USER_DOMAIN}", tier=tier, source=PARTNER_SOURCE,
                            created_at=now)
                s.add(user)
                await s.flush()
                eu = PartnerEndUser(id=eu_id, partner_id=partner.id, external_id=external_id, user_id=user.id,
                                    workspace_id=ws.id, email=profile.email, first_name=profile.first_name,
                                    last_name=profile.last_name, status=PROVISIONED, created_at=now, updated_at=now)
                s.add(eu)
                await s.commit()
                return Provisioned(end_user_to_dict(eu, ws), True, user.id)
            except IntegrityError:
                # Created at the same moment by another request: answer with that one.
                await s.rollback()
                if attempt:
                    raise
    raise AssertionError("unreachable")


def _apply(eu: PartnerEndUser, profile: EndUserProfile) -> bool:
    changed = False
    for name in ("email", "first_name", "last_name"):
        value = getattr(profile, name)
        if value is not None and getattr(eu, name) != value:
            setattr(eu, name, value)
            changed = True
    return changed


async def get_end_user(db: Database, partner_id: str, end_user_id: str) -> dict:
    async with db.session() as s:
        found = await _find(s, partner_id, end_user_id=end_user_id)
    if found is None:
        raise not_found(end_user_id)
    return end_user_to_dict(*found)


async def update_end_user(db: Database, partner_id: str, end_user_id: str, profile: EndUserProfile, *,
                          workspace_external_id: object = UNSET, clear: tuple[str, ...] = ()) -> dict:
    """Changes the profile fields given (and those named in ``clear`` to null) and, with
    ``workspace_external_id``, moves the end user to that workspace."""
    partner = None
    async with db.write_session() as s:
        found = await _find(s, partner_id, end_user_id=end_user_id)
        if found is None:
            raise not_found(end_user_id)
        eu, ws = found
        _apply(eu, profile)
        for name in clear:
            setattr(eu, name, None)
        if workspace_external_id is not UNSET and workspace_external_id != ws.external_id:
            partner = await s.get(Partner, partner_id)
            ws = await _workspace(s, partner, workspace_external_id)  # type: ignore[arg-type]
            eu.workspace_id = ws.id
        eu.updated_at = utcnow()
        await s.commit()
        return end_user_to_dict(eu, ws)


def _cursor(eu: PartnerEndUser) -> str:
    raw = json.dumps([as_utc(eu.created_at).isoformat(), eu.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, eid = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        when = parse_iso(created)
        if when is None or not isinstance(eid, str):
            raise ValueError
        return when, eid
    except (ValueError, TypeError, binascii.Error):
        raise ServiceError(400, "invalid_cursor", "the cursor is not one this API returned") from None


async def list_end_users(db: Database, partner_id: str, *, limit: int = 20, cursor: str | None = None,
                         external_id: str | None = None, workspace_id: str | None = None,
                         status: str | None = None) -> tuple[list[dict], str | None]:
    """The partner's end users, newest first, and the cursor of the next page (or None)."""
    q = select(PartnerEndUser, PartnerWorkspace).join(PartnerWorkspace, PartnerWorkspace.id == PartnerEndUser.workspace_id)
    q = q.where(PartnerEndUser.partner_id == partner_id)
    if external_id is not None:
        q = q.where(PartnerEndUser.external_id == external_id)
    if workspace_id is not None:
        q = q.where(PartnerEndUser.workspace_id == workspace_id)
    if status is not None:
        q = q.where(PartnerEndUser.status == status)
    if cursor:
        c_time, c_id = _decode_cursor(cursor)
        q = q.where(or_(PartnerEndUser.created_at < c_time,
                        and_(PartnerEndUser.created_at == c_time, PartnerEndUser.id < c_id)))
    q = q.order_by(PartnerEndUser.created_at.desc(), PartnerEndUser.id.desc()).limit(limit + 1)
    async with db.session() as s:
        rows = (await s.execute(q)).all()
    next_cursor = _cursor(rows[limit - 1][0]) if len(rows) > limit else None
    return [end_user_to_dict(eu, ws) for eu, ws in rows[:limit]], next_cursor


async def delete_end_user(db: Database, client: Client, partner: Partner, end_user_id: str) -> None:
    """Cancels the end user's unfinished tasks (the durable cancellation of the task API), revokes
    the tokens issued for it and removes it from the partner. The backing account stays, with its
    task history, unreachable by the partner; a claimed end user's own account keeps working, only
    what the partner holds for it is revoked."""
    async with db.session() as s:
        eu = await partners_end_user(s, partner.id, end_user_id)
    revoke = (OAuthToken.user_id == eu.user_id) & OAuthToken.revoked_at.is_(None)
    if eu.status == CLAIMED:
        revoke = revoke & (OAuthToken.client_id == partner.client_id)
    else:
        await cancel_tasks(db, client, eu.user_id, filt=TaskFilter())
    async with db.write_session() as s:
        await s.execute(update(OAuthToken).where(revoke).values(revoked_at=utcnow()))
        row = await s.get(PartnerEndUser, eu.id)
        if row is not None:
            await s.delete(row)
        # Its own sponsorship goes with it (its charges stay in the partner's usage).
        await s.execute(delete(PartnerSponsorship).where(
            PartnerSponsorship.partner_id == partner.id, PartnerSponsorship.scope == "end_user",
            PartnerSponsorship.target_id == eu.id))
        await s.commit()


async def acting_identity(db: Database, client_id: str, end_user_id: str) -> tuple[PartnerEndUser, User] | None:
    """The end user (and its account) a partner's client may act for, or None if it is not that
    partner's."""
    async with db.session() as s:
        row = (await s.execute(
            select(PartnerEndUser, User)
            .join(Partner, Partner.id == PartnerEndUser.partner_id)
            .join(User, User.id == PartnerEndUser.user_id)
            .where(Partner.client_id == client_id, PartnerEndUser.id == end_user_id)
        )).first()
    return (row[0], row[1]) if row is not None else None
