"""A2A 1.0 conformance defects found by the A2A TCK, each reproduced over JSON-RPC against the
live stack and now answered the spec's way:

1. push-notification config ids are per task (another task may use the same id; the same id on
   one task replaces it); a bad config sent with a message starts nothing and leaks no SQL;
2. SubscribeToTask on a finished task is UnsupportedOperationError;
3. a contextId that is not the task's context is InvalidParams;
4. a part the agent cannot take (a file, an unknown media type) is ContentTypeNotSupportedError;
5. (in test_a2a.py) a message to a finished task is UnsupportedOperationError, its context starts a new task;
6. ListTasks: totalSize counts every match, statusTimestampAfter filters, bad parameters and a
   message without messageId are InvalidParams;
7. history is the exchanged messages (first message as sent, question, answer, final answer);
8. the agent card carries Cache-Control with max-age and an ETag; ``POST /a2a/`` is the endpoint.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from codetether.core.models import Task
from tests.protocols.test_input_rules import error_data

pytestmark = pytest.mark.e2e

INVALID_PARAMS, UNSUPPORTED, CONTENT_TYPE, INTERNAL = -32602, -32004, -32005, -32603


async def rpc(live, user, method: str, params: dict, path: str = "/a2a") -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url, headers={**user.headers, "A2A-Version": "1.0"}, timeout=90) as http:
        return await http.post(path, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def msg(text: str | None = "hello", **fields) -> dict:
    out = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}], **fields}
    return out


async def send(live, user, message: dict, **configuration) -> dict:
    params: dict = {"message": message}
    if configuration:
        params["configuration"] = configuration
    r = await rpc(live, user, "SendMessage", params)
    assert r.status_code == 200, r.text
    return r.json()


async def task_count(db, user_id: str) -> int:
    async with db.session() as s:
        return (await s.execute(select(func.count()).select_from(Task).where(Task.user_id == user_id))).scalar_one()


async def test_push_config_ids_are_per_task_and_a_bad_one_starts_nothing(live, user, make_user):
    push = {"id": "hook-1", "url": "http://127.0.0.1:9/a"}
    first = (await send(live, user, msg("one"), taskPushNotificationConfig=push))["result"]["task"]
    # The same id on another task (the same caller's, then someone else's) is that task's own config.
    second = (await send(live, user, msg("two"), taskPushNotificationConfig=push))
    assert "result" in second, second
    other = await make_user()
    assert "result" in await send(live, other, msg("three"), taskPushNotificationConfig=push)
    # Set again on the same task: replaced, not duplicated.
    r = await rpc(live, user, "CreateTaskPushNotificationConfig",
                  {"taskId": first["id"], "id": "hook-1", "url": "http://127.0.0.1:9/b"})
    assert r.json()["result"]["url"] == "http://127.0.0.1:9/b", r.text
    listed = (await rpc(live, user, "ListTaskPushNotificationConfigs", {"taskId": first["id"]})).json()["result"]
    assert [(c["id"], c["url"], c["taskId"]) for c in listed["configs"]] == [("hook-1", "http://127.0.0.1:9/b", first["id"])]

    before = await task_count(live.stack.db, user.user_id)
    for bad in ({"id": "x" * 41, "url": "http://127.0.0.1:9/a"}, {"id": "ok", "url": "ftp://example.com/"}):
        body = await send(live, user, msg("never started"), taskPushNotificationConfig=bad)
        assert body["error"]["code"] == INVALID_PARAMS, body
        assert "INSERT" not in body["error"]["message"] and "SELECT" not in body["error"]["message"]
    assert await task_count(live.stack.db, user.user_id) == before


async def test_subscribe_to_a_finished_task_is_unsupported(live, user):
    task = (await send(live, user, msg("done soon")))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    async with httpx.AsyncClient(base_url=live.url, headers={**user.headers, "A2A-Version": "1.0"}, timeout=60) as http:
        r = await http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask",
                                          "params": {"id": task["id"]}})
    assert '"code":-32004' in r.text.replace(" ", ""), r.text
    assert "TASK_STATE_COMPLETED" not in r.text


async def test_context_mismatch_and_unsupported_parts_are_refused(live, user):
    task = (await send(live, user, msg("Paint it\nASK: Which color?")))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    body = await send(live, user, msg("Green", taskId=task["id"], contextId="someone-elses-context"))
    assert body["error"]["code"] == INVALID_PARAMS and error_data(body["error"])["code"] == "context_mismatch"
    # An unknown context cannot be taken: refused, not replaced by a new one.
    body = await send(live, user, msg("Hi", contextId=f"ctx-{uuid.uuid4().hex}"))
    assert body["error"]["code"] == INVALID_PARAMS and error_data(body["error"])["code"] == "context_not_found"
    before = await task_count(live.stack.db, user.user_id)
    for part in ({"raw": "aGVsbG8=", "mediaType": "application/octet-stream", "filename": "a.bin"},
                 {"url": "https://example.com/a.png", "mediaType": "image/png"},
                 {"text": "<b>hi</b>", "mediaType": "application/x-unknown"}):
        body = await send(live, user, {**msg(), "parts": [part]})
        assert body["error"]["code"] == CONTENT_TYPE, body
    assert await task_count(live.stack.db, user.user_id) == before
    # The question is still waiting and is answered by a matching message.
    done = (await send(live, user, msg("Green", taskId=task["id"], contextId=task["contextId"])))["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_list_tasks_counts_filters_and_refuses_bad_parameters(live, make_user):
    user = await make_user()
    ids = [(await send(live, user, msg(f"task {i}")))["result"]["task"]["id"] for i in range(3)]
    page = (await rpc(live, user, "ListTasks", {"pageSize": 1})).json()["result"]
    assert page["totalSize"] == 3 and len(page["tasks"]) == 1 and page["nextPageToken"]
    rest = (await rpc(live, user, "ListTasks", {"pageSize": 5, "pageToken": page["nextPageToken"]})).json()["result"]
    assert [t["id"] for t in page["tasks"] + rest["tasks"]] == ids[::-1] and rest["totalSize"] == 3
    later = (await rpc(live, user, "ListTasks", {"statusTimestampAfter": "2999-01-01T00:00:00Z"})).json()["result"]
    assert later.get("tasks", []) == [] and later.get("totalSize", 0) == 0
    earlier = (await rpc(live, user, "ListTasks", {"statusTimestampAfter": "2000-01-01T00:00:00Z",
                                                    "status": "TASK_STATE_COMPLETED"})).json()["result"]
    assert earlier["totalSize"] == 3
    for bad in ({"pageSize": 0}, {"pageSize": 101}, {"historyLength": -1}, {"status": "TASK_STATE_BOGUS"},
                {"status": 99}):
        r = await rpc(live, user, "ListTasks", bad)
        assert r.json()["error"]["code"] == INVALID_PARAMS, (bad, r.text)
    r = await rpc(live, user, "GetTask", {"id": ids[0], "historyLength": -1})
    assert r.json()["error"]["code"] == INVALID_PARAMS
    body = await send(live, user, {"role": "ROLE_USER", "parts": [{"text": "no id"}]})
    assert body["error"]["code"] == INVALID_PARAMS, body


async def test_history_is_the_exchanged_messages(live, user):
    first = "Paint the fence\nTwo coats, please.\nASK: Which color?"
    task = (await send(live, user, msg(first, metadata={"title": "A title that is not the message"})))["result"]["task"]
    done = (await send(live, user, msg("Green", taskId=task["id"])))["result"]["task"]
    got = (await rpc(live, user, "GetTask", {"id": task["id"]})).json()["result"]
    turns = [(m["role"], m["parts"][0]["text"]) for m in got["history"]]
    assert turns == [
        ("ROLE_USER", first),
        ("ROLE_AGENT", "Which color?"),
        ("ROLE_USER", "Green"),
        ("ROLE_AGENT", done["artifacts"][0]["parts"][0]["text"]),
    ]
    assert all(m["taskId"] == task["id"] and m["contextId"] == task["id"] and m["messageId"] for m in got["history"])
    last = (await rpc(live, user, "GetTask", {"id": task["id"], "historyLength": 2})).json()["result"]
    assert last["history"][0]["parts"][0]["text"] == "Green"


async def test_card_is_cacheable_and_the_endpoint_answers_with_a_trailing_slash(live, user):
    async with httpx.AsyncClient(base_url=live.url) as anon:
        r = await anon.get("/.well-known/agent-card.json")
        assert "max-age=" in r.headers["cache-control"] and r.headers.get("etag")
        again = await anon.get("/.well-known/agent-card.json", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert "application/json" in r.json()["defaultInputModes"]
    r = await rpc(live, user, "ListTasks", {"pageSize": 1}, path="/a2a/")
    assert r.status_code == 200 and "result" in r.json(), r.text


async def test_a_request_that_is_not_json_gets_content_type_not_supported(live, user):
    # JSONRPC-SSE-002: a body sent as text/plain is refused with -32005, not parsed.
    payload = str({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}).encode()
    async with httpx.AsyncClient(headers=user.headers) as http:
        r = await http.post(f"{live.url}/a2a", content=payload, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == -32005
    r = await live.stack.http.get("/v1/automation/tasks", headers=user.headers)
    assert r.json()["data"] == []
