"""Second probe, M5 (webhook secrets): ``whsec_`` signing secrets sat in the database in clear.

With ``CODETETHER_CODEBASE_KEY`` set they are sealed like codebase credentials
(``codetether/core/secretbox.py``): the row holds ``sealed:v1:`` + a Fernet token, the API still
shows the secret once and masked after, deliveries are signed with the plain secret, rotation
seals the old one too, rows stored in clear before keep working, and migration ``sec02`` seals
the rows already there.
"""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import MetaData, create_engine, select, text

from codetether.core.db import downgrade, migrate
from codetether.core.ids import new_id, utcnow
from codetether.core.models import Task, WebhookSubscription
from codetether.core.secretbox import SEALED_PREFIX
from codetether.webhooks.signing import generate_secret
from tests.conftest import running_stack
from tests.support.receiver import Receiver
from tests.webhooks.helpers import assert_signed, expected_v1, wait_deliveries
from tests.webhooks.test_delivery import ALL_SCOPES, subscribe


async def stored(db, webhook_id: str) -> WebhookSubscription:
    async with db.session() as s:
        return (await s.execute(select(WebhookSubscription).where(WebhookSubscription.id == webhook_id))).scalar_one()


async def ping_signed_with(s, user, sub_id: str, rx: Receiver, secrets: list[str]) -> None:
    r = await s.http.post(f"/v1/webhooks/{sub_id}/test", headers=user.headers)
    assert r.status_code == 202, r.text
    [req] = await rx.wait_for(1)
    h = req.headers
    assert h["webhook-signature"].split(" ") == [
        expected_v1(secret, h["webhook-id"], h["webhook-timestamp"], req.body) for secret in secrets
    ]
    await wait_deliveries(s.http, sub_id, user.headers, lambda d: d and d[0]["status"] == "delivered")
    rx.requests.clear()


async def test_secrets_are_sealed_at_rest_and_still_sign(settings, temporal_env, db, make_user):
    sealed = settings.model_copy(update={"codebase_key": Fernet.generate_key().decode()})
    user = await make_user(scopes=ALL_SCOPES)
    async with running_stack(sealed, temporal_env.client, db) as s, Receiver() as rx:
        sub = await subscribe(s.http, user.headers, rx.url, ["*"])
        assert sub["secret"].startswith("whsec_")
        row = await stored(db, sub["id"])
        assert row.secret.startswith(SEALED_PREFIX) and sub["secret"] not in row.secret
        shown = (await s.http.get(f"/v1/webhooks/{sub['id']}", headers=user.headers)).json()["secret"]
        assert shown == "whsec_…" + sub["secret"][-4:]
        await ping_signed_with(s, user, sub["id"], rx, [sub["secret"]])

        rotated = await s.http.patch(f"/v1/webhooks/{sub['id']}", json={"rotate_secret": True}, headers=user.headers)
        new_secret = rotated.json()["secret"]
        row = await stored(db, sub["id"])
        assert row.secret.startswith(SEALED_PREFIX) and new_secret not in row.secret
        assert all(p["secret"].startswith(SEALED_PREFIX) for p in row.previous_secrets)
        await ping_signed_with(s, user, sub["id"], rx, [new_secret, sub["secret"]])

        refused = await s.http.post("/v1/webhooks", json={"url": rx.url, "events": ["*"],
                                                          "secret": SEALED_PREFIX + "x" * 20}, headers=user.headers)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_secret"


async def test_a_row_stored_in_clear_keeps_working(settings, temporal_env, db, make_user):
    sealed = settings.model_copy(update={"codebase_key": Fernet.generate_key().decode()})
    user = await make_user(scopes=ALL_SCOPES)
    async with running_stack(sealed, temporal_env.client, db) as s, Receiver() as rx:
        plain = generate_secret()
        sub_id = new_id("whk")
        async with db.session() as session:
            session.add(WebhookSubscription(id=sub_id, user_id=user.user_id, url=rx.url, events=["*"], secret=plain,
                                            previous_secrets=[], status="active", created_at=utcnow(),
                                            updated_at=utcnow()))
            await session.commit()
        shown = (await s.http.get(f"/v1/webhooks/{sub_id}", headers=user.headers)).json()["secret"]
        assert shown == "whsec_…" + plain[-4:]
        await ping_signed_with(s, user, sub_id, rx, [plain])


def test_migration_seals_existing_rows_when_a_key_is_configured(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate(url, "agent02")
    plain, old = generate_secret(), generate_secret()
    sync = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with sync.begin() as conn:
        conn.execute(text("INSERT INTO users (id, email, tier, source, created_at) VALUES ('usr_1', 'a@example.com', "
                          "'pro', 'local', CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO webhook_subscriptions (id, user_id, url, events, secret, previous_secrets, status, "
            "created_at, updated_at) VALUES ('whk_1', 'usr_1', 'https://example.com', '[\"*\"]', :s, :p, 'active', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ), {"s": plain, "p": '[{"secret": "%s", "expires_at": "2999-01-01T00:00:00Z"}]' % old})

    # Rows as that schema had them (the models now have later columns): through the reflected tables.
    with sync.begin() as conn:
        tables = MetaData()
        tables.reflect(conn, only=["tasks", "task_events"])
        now = utcnow()
        conn.execute(tables.tables["tasks"].insert().values(
            id="task_1", user_id="usr_1", run_id="run_1", title="t", description="d", agent_type="general",
            model="demo", priority=0, metadata={}, status="completed", created_at=now, updated_at=now,
            webhook_url="https://example.com", webhook_secret=old, conversation=[], retry_count=0, run_count=1,
            last_seq=1))
        conn.execute(tables.tables["task_events"].insert().values(
            id="evt_1", task_id="task_1", user_id="usr_1", seq=1, type="task.created", run_id="run_1", body="{}",
            created_at=now))

    def task_secret() -> str:
        with sync.connect() as conn:
            return conn.execute(text("SELECT webhook_secret FROM tasks")).scalar_one()

    def row() -> tuple[str, str]:
        with sync.connect() as conn:
            return tuple(conn.execute(text("SELECT secret, previous_secrets FROM webhook_subscriptions")).one())

    monkeypatch.setenv("CODETETHER_CODEBASE_KEY", Fernet.generate_key().decode())
    migrate(url)
    secret, previous = row()
    assert secret.startswith(SEALED_PREFIX) and plain not in secret
    assert SEALED_PREFIX in previous and old not in previous
    assert task_secret().startswith(SEALED_PREFIX)
    with sync.connect() as conn:  # rebuilding the tasks table kept what refers to it
        assert conn.execute(text("SELECT count(*) FROM task_events")).scalar_one() == 1
    downgrade(url, "agent02")
    secret, previous = row()
    assert secret == plain and old in previous and task_secret() == old
    sync.dispose()


async def test_a_tasks_own_webhook_secret_is_sealed_and_still_signs(settings, temporal_env, db, make_user):
    sealed = settings.model_copy(update={"codebase_key": Fernet.generate_key().decode()})
    user = await make_user(scopes=ALL_SCOPES)
    async with running_stack(sealed, temporal_env.client, db) as s, Receiver() as rx:
        r = await s.http.post("/v1/automation/tasks", headers=user.headers, json={
            "title": "T", "description": "d", "webhook_url": rx.url, "webhook_secret": "task-secret-123"})
        assert r.status_code == 201, r.text
        [req] = await rx.wait_for(1)
        assert_signed(req, "task-secret-123")
        async with db.session() as session:
            row = await session.get(Task, r.json()["task_id"])
        assert row.webhook_secret.startswith(SEALED_PREFIX) and "task-secret-123" not in row.webhook_secret


async def test_a_secret_sealed_with_another_key_is_never_sent_unsigned(settings, temporal_env, db, make_user):
    first = settings.model_copy(update={"codebase_key": Fernet.generate_key().decode()})
    other = settings.model_copy(update={"codebase_key": Fernet.generate_key().decode()})
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        async with running_stack(first, temporal_env.client, db, worker=False) as s:
            sub = await subscribe(s.http, user.headers, rx.url, ["*"])
        async with running_stack(other, temporal_env.client, db) as s:
            r = await s.http.get(f"/v1/webhooks/{sub['id']}", headers=user.headers)
            assert r.status_code == 503 and r.json()["code"] == "secret_unavailable"
            assert (await s.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)).status_code == 202
            done = await wait_deliveries(s.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "cancelled")
            assert "another key" in (done[0].get("last_error") or "")
        assert rx.requests == []
