"""Finding 5 and the ``no-store`` part of finding 9: secrets in idempotency replays and caches.

A replayed ``POST /v1/api-keys``, ``/v1/oauth/clients`` or ``/v1/webhooks`` returned the full
secret for 24 h because the idempotency store kept the response in clear. The store now keeps it
redacted and a replay says the secret was shown once. Responses carrying a secret are
``Cache-Control: no-store``.
"""

from __future__ import annotations

from sqlalchemy import select

from codetether.core.models import IdempotencyRecord
from tests.oauth.conftest import REDIRECT

CASES = [
    ("/v1/api-keys", {"name": "replayed", "scopes": ["tasks:read"]}, "key", "ct_"),
    ("/v1/oauth/clients", {"name": "replayed", "redirect_uris": [REDIRECT]}, "client_secret", "cts_"),
    ("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["*"]}, "secret", "whsec_"),
]


async def stored_bodies(db) -> str:
    async with db.session() as s:
        rows = (await s.execute(select(IdempotencyRecord.response_body))).scalars()
        return "\n".join(r or "" for r in rows)


async def test_keyed_replays_never_return_or_store_the_secret(stack, user):
    for path, body, field, prefix in CASES:
        headers = {**user.headers, "Idempotency-Key": f"replay-{path}"}
        first = await stack.http.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text
        secret = first.json()[field]
        assert secret.startswith(prefix)
        assert first.headers["cache-control"] == "no-store"
        assert "notice" not in first.json() or first.json()["notice"] is None

        again = await stack.http.post(path, json=body, headers=headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["cache-control"] == "no-store"
        replay = again.json()
        assert secret not in again.text
        assert replay[field] is None or replay[field].endswith(secret[-4:]) and "…" in replay[field]
        assert "shown once" in replay["notice"]
        # Same resource, same public fields.
        ident = "client_id" if path == "/v1/oauth/clients" else "id"
        assert replay[ident] == first.json()[ident]
        assert secret not in await stored_bodies(stack.db)

    # The key made by the first call works; the replay did not make another.
    keys = (await stack.http.get("/v1/api-keys", headers=user.headers)).json()["data"]
    assert [k["name"] for k in keys].count("replayed") == 1


async def test_secret_responses_are_not_cacheable(stack, user):
    for path, body, _field, _prefix in CASES:
        r = await stack.http.post(path, json=body, headers=user.headers)
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store", path
    hook = (await stack.http.post("/v1/webhooks", json=CASES[2][1], headers=user.headers)).json()
    rotated = await stack.http.patch(f"/v1/webhooks/{hook['id']}", json={"rotate_secret": True}, headers=user.headers)
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    assert rotated.json()["secret"].startswith("whsec_") and "…" not in rotated.json()["secret"]
