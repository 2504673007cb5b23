"""A2A over JSON-RPC with a2a-sdk's own client against the live stack: card discovery, blocking
send, a question answered in the same task, streaming, cancel, push notifications, isolation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from tests.protocols.conftest import WEBHOOK_SECRET
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


def message(text: str, *, task_id: str = "", message_id: str | None = None, metadata: dict | None = None) -> Message:
    msg = Message(message_id=message_id or uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)],
                  task_id=task_id)
    if metadata:
        msg.metadata.update(metadata)
    return msg


async def a2a_client(live, user, *, streaming: bool = False):
    http = httpx.AsyncClient(headers=user.headers, timeout=60)
    return await create_client(live.url, client_config=ClientConfig(httpx_client=http, streaming=streaming))


async def send(client, msg: Message, **config) -> list:
    req = SendMessageRequest(message=msg)
    if config:
        req.configuration.CopyFrom(SendMessageConfiguration(**config))
    return [event async for event in client.send_message(req)]


async def test_card_discovery_and_blocking_send_completes_with_result_artifact(live, user):
    async with httpx.AsyncClient() as anon:
        card = (await anon.get(f"{live.url}/.well-known/agent-card.json")).json()
    assert card["supportedInterfaces"][0]["url"] == f"{live.url}/a2a"
    assert {s["id"] for s in card["skills"]} == {"general", "build", "plan", "explore"}
    assert set(card["securitySchemes"]) == {"bearer", "oauth2"}
    assert card["capabilities"]["streaming"] is True and card["capabilities"]["pushNotifications"] is True
    flows = card["securitySchemes"]["oauth2"]["oauth2SecurityScheme"]["flows"]["authorizationCode"]
    assert flows["tokenUrl"] == f"{live.url}/oauth/token"

    client = await a2a_client(live, user)
    async with client:
        events = await send(client, message("Summarize the feedback: slow but lovely"))
        task = events[-1].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.context_id == task.id
        assert task.artifacts[0].parts[0].text.startswith('Demo result for "Summarize the feedback')
        # The same task through REST.
        r = await live.stack.http.get(f"/v1/automation/tasks/{task.id}", headers=user.headers)
        assert r.status_code == 200 and r.json()["status"] == "completed"
        assert r.json()["result"] == task.artifacts[0].parts[0].text
        got = await client.get_task(GetTaskRequest(id=task.id, history_length=1))
        assert got.status.state == TaskState.TASK_STATE_COMPLETED and len(got.history) == 1


async def test_question_is_input_required_and_next_message_answers_it(live, user):
    client = await a2a_client(live, user)
    async with client:
        events = await send(client, message("Paint the fence\nASK: Which color?"))
        task = events[-1].task
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert task.status.message.parts[0].text == "Which color?"
        events = await send(client, message("Green", task_id=task.id))
        done = events[-1].task
        assert done.id == task.id
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert done.artifacts[0].parts[0].text.startswith("Thanks, noted: Green.")


async def test_input_required_carries_the_options_and_a_data_part_chooses(live, user):
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.struct_pb2 import Value

    client = await a2a_client(live, user)
    async with client:
        task = (await send(client, message("Paint the fence\nASK: Which color? [red|green]")))[-1].task
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        text, data = task.status.message.parts
        assert text.text == "Which color?" and data.media_type == "application/json"
        action = MessageToDict(data.data)["required_action"]
        assert action["kind"] == "question" and action["options"] == ["red", "green"]
        bad = Value()
        bad.struct_value.update({"choice": "purple"})
        msg = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, task_id=task.id,
                      parts=[Part(data=bad, media_type="application/json")])
        with pytest.raises(Exception, match="choice must be one of"):
            await send(client, msg)
        good = Value()
        good.struct_value.update({"choice": "green"})
        msg = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, task_id=task.id,
                      parts=[Part(data=good, media_type="application/json")])
        done = (await send(client, msg))[-1].task
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert done.artifacts[0].parts[0].text.startswith("Thanks, noted: green.")


async def test_message_id_is_the_idempotency_key(live, user):
    client = await a2a_client(live, user)
    async with client:
        mid = uuid.uuid4().hex
        first = (await send(client, message("Once only", message_id=mid)))[-1].task
        again = (await send(client, message("Once only", message_id=mid)))[-1].task
        assert again.id == first.id
        # The same id on another message is another message (not a replay of the first).
        other = (await send(client, message("Something else", message_id=mid)))[-1].task
        assert other.id != first.id
    r = await live.stack.http.get("/v1/automation/tasks", headers=user.headers)
    assert [t["task_id"] for t in r.json()["data"]] == [other.id, first.id]


async def test_streaming_sends_every_status_update_in_order_and_ends_on_the_terminal_one(live, user):
    client = await a2a_client(live, user, streaming=True)
    async with client:
        events = await send(client, message("Stream it\nSLEEP: 0.3"))
    assert events[0].HasField("task")
    task_id = events[0].task.id
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[0] == TaskState.TASK_STATE_SUBMITTED
    assert TaskState.TASK_STATE_WORKING in states
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    assert states.count(TaskState.TASK_STATE_COMPLETED) == 1
    # The stream is the task's event log: one status update per stored status event, in order.
    r = await live.stack.http.get(f"/v1/automation/tasks/{task_id}/events", headers=user.headers)
    logged = [e["event"] for e in r.json()["data"]]
    assert len(states) == len(logged)
    assert events[-1].HasField("status_update")
    artifacts = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert artifacts and artifacts[0].artifact.parts[0].text.startswith("Demo result")


async def test_cancel(live, user):
    client = await a2a_client(live, user)
    async with client:
        task = (await send(client, message("Long one\nSLEEP: 30"), return_immediately=True))[-1].task
        assert task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
        cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=(await send(client, message("quick")))[-1].task.id))
    r = await live.stack.http.get(f"/v1/automation/tasks/{task.id}", headers=user.headers)
    assert r.json()["status"] == "cancelled"


async def test_push_notification_is_delivered_signed(live, user):
    async with Receiver() as receiver:
        client = await a2a_client(live, user)
        async with client:
            token = "client-token-123"
            push = TaskPushNotificationConfig(url=receiver.url, token=token)
            task = (await send(client, message("Push me"), task_push_notification_config=push))[-1].task
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            bodies = [json.loads(r.body) for r in receiver.requests]
            if any(b["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED" for b in bodies):
                break
            await asyncio.sleep(0.1)
        done = [r for r in receiver.requests
                if json.loads(r.body)["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"]
        assert len(done) == 1, [r.body for r in receiver.requests]
        req = done[0]
        assert json.loads(req.body)["statusUpdate"]["taskId"] == task.id
        assert req.headers["x-a2a-notification-token"] == token
        expected = hmac.new(WEBHOOK_SECRET.encode(), req.body, hashlib.sha256).hexdigest()
        assert req.headers["x-codetether-signature"] == f"sha256={expected}"
        key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
        signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
        v1 = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert f"v1,{v1}" in req.headers["webhook-signature"].split()


async def test_another_users_task_is_not_found_and_no_token_is_401(live, user, make_user):
    client = await a2a_client(live, user)
    async with client:
        task = (await send(client, message("Mine")))[-1].task
    other = await make_user()
    client2 = await a2a_client(live, other)
    async with client2:
        with pytest.raises(TaskNotFoundError):
            await client2.get_task(GetTaskRequest(id=task.id))
        with pytest.raises(TaskNotFoundError):
            await send(client2, message("Hijack", task_id=task.id))
    async with httpx.AsyncClient() as anon:
        r = await anon.post(f"{live.url}/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask",
                                                     "params": {"id": task.id}}, headers={"A2A-Version": "1.0"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["data"]["code"] == "unauthenticated"


async def test_v0_3_method_names_are_accepted(live, user):
    """Older A2A clients speak 0.3 (`message/send`, `tasks/get`, lower-case states)."""
    async with httpx.AsyncClient(base_url=live.url, headers=user.headers, timeout=60) as http:
        r = await http.post("/a2a", json={
            "jsonrpc": "2.0", "id": "a", "method": "message/send",
            "params": {"message": {"kind": "message", "messageId": uuid.uuid4().hex, "role": "user",
                                   "parts": [{"kind": "text", "text": "Old client says hi"}]}},
        })
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert result["status"]["state"] == "completed", result
        got = await http.post("/a2a", json={"jsonrpc": "2.0", "id": "b", "method": "tasks/get",
                                            "params": {"id": result["id"]}})
        assert got.json()["result"]["artifacts"][0]["parts"][0]["text"].startswith("Demo result")


async def test_context_of_a_finished_task_starts_a_new_task_in_the_same_context(live, user):
    """A follow-up is a new A2A task (the next run of the CodeTether task) in the same context;
    the finished task stays as it was and takes no more messages."""
    client = await a2a_client(live, user)
    async with client:
        first = (await send(client, message("First question")))[-1].task
        assert first.status.state == TaskState.TASK_STATE_COMPLETED
        with pytest.raises(UnsupportedOperationError):
            await send(client, message("To the finished task", task_id=first.id))
        follow = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, context_id=first.context_id,
                         parts=[Part(text="And a second one")])
        second = (await send(client, follow))[-1].task
        assert second.id != first.id and second.id == second.metadata["runId"]
        assert second.context_id == first.context_id == first.id
        assert second.status.state == TaskState.TASK_STATE_COMPLETED
        assert second.metadata["runId"] != first.metadata["runId"]
        assert "2 message(s)" in second.artifacts[0].parts[0].text
        assert second.history[0].parts[0].text == "And a second one"
        assert {m.task_id for m in second.history} == {second.id}
        again = await client.get_task(GetTaskRequest(id=first.id))
        assert again.status.state == TaskState.TASK_STATE_COMPLETED
        assert again.artifacts[0].parts[0].text == first.artifacts[0].parts[0].text
        assert again.history[0].parts[0].text == "First question"
        assert (await client.get_task(GetTaskRequest(id=second.id))).metadata["runId"] == second.id
    # REST sees one task, on its second run.
    r = await live.stack.http.get(f"/v1/automation/tasks/{first.id}", headers=user.headers)
    assert r.json()["run_id"] == second.id and r.json()["status"] == "completed"


async def test_subscribe_follows_a_running_task_to_its_end(live, user):
    starter = await a2a_client(live, user)
    async with starter:
        task_id = (await send(starter, message("Slowly\nSLEEP: 4"), return_immediately=True))[-1].task.id
    client = await a2a_client(live, user, streaming=True)
    async with client:
        events = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task_id))]
    assert events[0].HasField("task") and events[0].task.id == task_id
    assert events[0].task.status.state != TaskState.TASK_STATE_COMPLETED, "subscribed after the end"
    assert events[-1].HasField("status_update"), events
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_push_notification_configs_can_be_listed_read_and_deleted(live, user):
    client = await a2a_client(live, user)
    async with client:
        task = (await send(client, message("Configs")))[-1].task
        made = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/push", token="t1"))
        assert made.id.startswith("push_") and made.url == "http://127.0.0.1:9/push"
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task.id))
        assert [c.id for c in listed.configs] == [made.id]
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id=made.id))
        assert got.token == "t1"
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=made.id))
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task.id))
        assert list(listed.configs) == []
        with pytest.raises(InvalidParamsError):
            await client.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id=task.id, url="ftp://example.com/push"))
