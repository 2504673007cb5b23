"""The partner's webhook events about its end users: ``end_user.created`` (the end user was
provisioned: ``POST /v1/partner/end_users`` or a first token exchange) and ``end_user.claimed``
(its claim link was used, ``codetether/partners/claims.py``).

They go to the subscriptions of the partner's service account (the account its client
credentials act for), with the end user as the API shows it as ``data``. Each is published once
per end user: the event id derives from the end user's id, so a retried request sends the same
event and no subscription gets it twice.
"""

from __future__ import annotations

from temporalio.client import Client

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.models import Partner
from codetether.webhooks.account_events import publish_account_event

END_USER_CREATED = "end_user.created"
END_USER_CLAIMED = "end_user.claimed"


async def publish_end_user_event(db: Database, client: Client, settings: Settings, partner: Partner,
                                 event_type: str, end_user: dict) -> list[str]:
    return await publish_account_event(db, client, settings, user_id=partner.user_id, event_type=event_type,
                                       key=end_user["end_user_id"], data=end_user)
