"""Finding 7: unbounded subscriptions.

120 subscriptions in a row all succeeded, each event fanning out to every one of them. A user
now has at most ``CODETETHER_WEBHOOK_MAX_SUBSCRIPTIONS_PER_USER`` (50) subscriptions and at most
``CODETETHER_WEBHOOK_MAX_SUBSCRIPTIONS_PER_HOST`` (20) toward one destination host.
"""

from __future__ import annotations

HOOKS = "/v1/webhooks"


async def subscribe(http, headers, url: str):
    return await http.post(HOOKS, json={"url": url, "events": ["task.completed"]}, headers=headers)


async def test_subscription_51_is_refused(stack, make_user):
    user = await make_user()
    # 50 subscriptions spread over three hosts (17 + 17 + 16), under the per-host cap.
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    for i in range(50):
        r = await subscribe(stack.http, user.headers, f"http://{hosts[i % 3]}:9/hook/{i}")
        assert r.status_code == 201, (i, r.text)
    r = await subscribe(stack.http, user.headers, "http://127.0.0.4:9/hook/51")
    assert r.status_code == 422
    assert r.json()["code"] == "webhook_limit_reached"
    assert "50" in r.json()["detail"]
    listed = (await stack.http.get(HOOKS, headers=user.headers)).json()["data"]
    assert len(listed) == 50
    # Deleting one makes room again; another user is not affected.
    assert (await stack.http.delete(f"{HOOKS}/{listed[0]['id']}", headers=user.headers)).status_code == 204
    assert (await subscribe(stack.http, user.headers, "http://127.0.0.4:9/hook/again")).status_code == 201
    other = await make_user()
    assert (await subscribe(stack.http, other.headers, "http://127.0.0.4:9/hook")).status_code == 201


async def test_per_destination_host_cap(stack, make_user):
    user = await make_user()
    for i in range(20):
        r = await subscribe(stack.http, user.headers, f"http://127.0.0.1:{9000 + i}/hook")
        assert r.status_code == 201, (i, r.text)
    r = await subscribe(stack.http, user.headers, "http://127.0.0.1:9999/another")
    assert r.status_code == 422 and r.json()["code"] == "webhook_host_limit_reached"
    # Another host is fine, and moving a subscription onto the full host is refused too.
    moved = await subscribe(stack.http, user.headers, "http://127.0.0.2:9/hook")
    assert moved.status_code == 201
    r = await stack.http.patch(f"{HOOKS}/{moved.json()['id']}", json={"url": "http://127.0.0.1:9/hook"},
                               headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "webhook_host_limit_reached"
    # Changing the URL of one already on that host stays allowed.
    first = (await stack.http.get(HOOKS, headers=user.headers)).json()["data"][-1]
    r = await stack.http.patch(f"{HOOKS}/{first['id']}", json={"url": "http://127.0.0.1:9/renamed"},
                               headers=user.headers)
    assert r.status_code == 200, r.text


ONE_ADDRESS = ["0x7f.1", "2130706433", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "127.0.0.1."]


async def test_other_spellings_of_one_address_share_its_cap(stack, make_user):
    """Second probe, L9: the per-host cap counted ``0x7f.1``, ``2130706433`` or
    ``[::ffff:127.0.0.1]`` as hosts of their own; each is 127.0.0.1 (``canonical_host``)."""
    user = await make_user()
    for i in range(20):
        r = await subscribe(stack.http, user.headers, f"http://127.0.0.1:{9000 + i}/hook")
        assert r.status_code == 201, (i, r.text)
    for spelling in ONE_ADDRESS:
        r = await subscribe(stack.http, user.headers, f"http://{spelling}:9/hook")
        assert r.status_code == 422, (spelling, r.text)
        assert r.json()["code"] == "webhook_host_limit_reached"
        assert "127.0.0.1" in r.json()["detail"]
