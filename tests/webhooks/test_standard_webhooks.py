"""Real deliveries verified with the Standard Webhooks reference library (the ``standardwebhooks``
package on PyPI), not with our own helpers: what a receiver that follows the specification gets.

Each delivery is received by a real HTTP server on 127.0.0.1 (tests/support/receiver.py) and its
exact body bytes and headers are passed to ``standardwebhooks.Webhook(secret).verify``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import standardwebhooks.webhooks as swh
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from codetether.webhooks.signing import generate_secret
from tests.conftest import wait_status
from tests.support.receiver import Receiver, Received
from tests.webhooks.helpers import wait_deliveries
from tests.webhooks.test_delivery import ALL_SCOPES, subscribe


def _verify(secret: str | bytes, req: Received) -> dict:
    payload = Webhook(secret).verify(req.body, req.headers)
    assert payload == json.loads(req.body)
    # The message id signed is the event's id, the same on every attempt.
    assert payload["id"] == req.headers["webhook-id"]
    return payload


async def _ping(stack, user, sub: dict, rx: Receiver, count: int = 1) -> list[Received]:
    r = await stack.http.post(f"/v1/webhooks/{sub['id']}/test", headers=user.headers)
    assert r.status_code == 202, r.text
    return await rx.wait_for(count)


async def test_every_attempt_of_real_deliveries_verifies(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        secret = sub["secret"]
        assert secret.startswith("whsec_")
        # The first attempt fails, so the retry (a new timestamp, a new signature) is checked too.
        rx.script([500])
        first, retry = await _ping(stack, user, sub, rx, 2)
        assert first.headers["webhook-id"] == retry.headers["webhook-id"] and first.body == retry.body
        for attempt in (first, retry):
            assert _verify(secret, attempt)["event"] == "ping"

        # The events of a task, with text that JSON escapes.
        r = await stack.http.post(
            "/v1/automation/tasks",
            json={"title": "Ünïcode \u2028 \"title\" </script>", "prompt": "hi", "metadata": {"k": 1.5, "n": None}},
            headers=user.headers,
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        await wait_status(stack.http, task_id, user.headers, {"completed"})
        reqs = await rx.wait_for(1, predicate=lambda q: json.loads(q.body).get("event") == "task.completed")
        done = _verify(secret, reqs[0])
        assert done["task_id"] == task_id and done["metadata"] == {"k": 1.5, "n": None}
        for req in rx.requests:
            _verify(secret, req)


async def test_after_rotation_both_secrets_verify(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        r = await stack.http.patch(f"/v1/webhooks/{sub['id']}", json={"rotate_secret": True}, headers=user.headers)
        assert r.status_code == 200, r.text
        new_secret, old_secret = r.json()["secret"], sub["secret"]
        [req] = await _ping(stack, user, sub, rx)
        assert len(req.headers["webhook-signature"].split(" ")) == 2
        # A receiver that has switched to the new secret and one still on the old one both accept it.
        _verify(new_secret, req)
        _verify(old_secret, req)
        with pytest.raises(WebhookVerificationError):
            Webhook(generate_secret()).verify(req.body, req.headers)


async def test_a_plain_secret_is_the_key_itself(stack, make_user):
    """A secret chosen by the user without ``whsec_`` is used as the key bytes as they are."""
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        secret = "my-own-shared-secret-0123456789"
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"], secret=secret)
        [req] = await _ping(stack, user, sub, rx)
        _verify(secret.encode(), req)


async def test_tampering_and_replays_are_refused(stack, make_user, monkeypatch):
    user = await make_user(scopes=ALL_SCOPES)
    async with Receiver() as rx:
        sub = await subscribe(stack.http, user.headers, rx.url, ["*"])
        secret = sub["secret"]
        [req] = await _ping(stack, user, sub, rx)
        _verify(secret, req)
        await wait_deliveries(stack.http, sub["id"], user.headers, lambda d: d and d[0]["status"] == "delivered")
        hook = Webhook(secret)
        tampered = [
            # One byte of the body changed.
            (req.body.replace(b'"ping"', b'"pong"'), req.headers),
            # The same JSON, serialized differently: the signature is over the exact bytes.
            (json.dumps(json.loads(req.body), indent=1).encode(), req.headers),
            # Another message id or timestamp (still within the tolerance) than the ones signed.
            (req.body, {**req.headers, "webhook-id": "evt_someone_else"}),
            (req.body, {**req.headers, "webhook-timestamp": str(int(req.headers["webhook-timestamp"]) + 1)}),
            # No signature.
            (req.body, {k: v for k, v in req.headers.items() if k != "webhook-signature"}),
        ]
        for body, headers in tampered:
            with pytest.raises(WebhookVerificationError):
                hook.verify(body, headers)

        # The same untouched delivery replayed six minutes later: its timestamp is too old.
        class _SixMinutesLater(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.now(tz) + timedelta(minutes=6)

        monkeypatch.setattr(swh, "datetime", _SixMinutesLater)
        with pytest.raises(WebhookVerificationError, match="too old"):
            hook.verify(req.body, req.headers)
        monkeypatch.undo()
        _verify(secret, req)
