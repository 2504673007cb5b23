"""Second probe, Info: query parameters that were ignored or crashed.

``GET /v1/webhooks/{id}/deliveries`` filtered by a cursor or status it did not understand (a
typo answered an empty or unfiltered page as if it were the truth); the console's
``GET /console/tasks/{id}/stream?after=<5000 digits>`` answered 500 (Python refuses to parse an
int that long). Each now answers 422 with a stable code.
"""

from __future__ import annotations

import pytest

from codetether.accounts.websessions import create_session
from codetether.api.console.web import SESSION_COOKIE
from tests.conftest import wait_status

ALL_SCOPES = ["tasks:read", "tasks:write", "messages:write", "webhooks:manage"]


async def new_subscription(stack, user) -> str:
    r = await stack.http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["task.completed"]},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.parametrize("params,code", [
    ({"cursor": "zzz"}, "invalid_cursor"),
    ({"cursor": "' OR 1=1 --"}, "invalid_cursor"),
    ({"status": "deliverd"}, "invalid_status"),
    ({"status": "failed,bogus"}, "invalid_status"),
    ({"status": ","}, "invalid_status"),
])
async def test_bad_delivery_filters_are_refused(stack, make_user, params, code):
    user = await make_user(scopes=ALL_SCOPES)
    hook = await new_subscription(stack, user)
    r = await stack.http.get(f"/v1/webhooks/{hook}/deliveries", params=params, headers=user.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


async def test_good_delivery_filters_still_work(stack, make_user):
    user = await make_user(scopes=ALL_SCOPES)
    hook = await new_subscription(stack, user)
    r = await stack.http.get(f"/v1/webhooks/{hook}/deliveries",
                             params={"status": "pending, failed", "cursor": "dlv_01m96pp7errz94901esp3mbne6"},
                             headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []


@pytest.mark.parametrize("after", ["9" * 5000, "99999999999", "-1", "1e3", "abc"])
async def test_console_stream_refuses_an_after_that_is_not_a_seq(stack, user, after):
    created = await stack.http.post("/v1/automation/tasks", json={"title": "T", "description": "d"},
                                    headers=user.headers)
    task_id = created.json()["task_id"]
    await wait_status(stack.http, task_id, user.headers, {"completed"})
    cookie = await create_session(stack.db, user.user_id, hours=1)
    r = await stack.http.get(f"/console/tasks/{task_id}/stream", params={"after": after},
                             cookies={SESSION_COOKIE: cookie})
    assert r.status_code == 422, r.text[:300]
    r = await stack.http.get(f"/console/tasks/{task_id}/stream", headers={"Last-Event-ID": after},
                             cookies={SESSION_COOKIE: cookie})
    assert r.status_code == 422
    # A seq past the end of a finished task is still "nothing follows".
    r = await stack.http.get(f"/console/tasks/{task_id}/stream", params={"after": "2147483647"},
                             cookies={SESSION_COOKIE: cookie})
    assert r.status_code == 204


async def test_rest_events_refuse_an_after_of_5000_digits(stack, user):
    created = await stack.http.post("/v1/automation/tasks", json={"title": "T", "description": "d"},
                                    headers=user.headers)
    r = await stack.http.get(f"/v1/automation/tasks/{created.json()['task_id']}/events",
                             params={"after": "9" * 5000}, headers={**user.headers, "Accept": "text/event-stream"})
    assert r.status_code == 422
