"""MCP over Streamable HTTP with the official ``mcp`` SDK client against the live stack: tools,
create → wait (with progress) → result, answering a question, refusal without a token, and the
OAuth path an MCP host takes (RFC 9728 discovery, RFC 7591 registration, code flow with PKCE)."""

from __future__ import annotations

import contextlib
import json
import uuid
from urllib.parse import parse_qsl, urlsplit

import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from codetether.accounts.service import create_user
from tests.oauth.conftest import PASSWORD, sign_in_and_consent

pytestmark = pytest.mark.e2e

TOOLS = {"create_task", "get_task", "list_tasks", "wait_for_task", "answer_question", "send_message",
         "cancel_task", "list_models", "list_codebases"}


@contextlib.asynccontextmanager
async def mcp_session(live, *, headers: dict | None = None, auth=None):
    async with httpx2.AsyncClient(headers=headers or {}, auth=auth, timeout=60) as http:
        async with streamable_http_client(f"{live.url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, name: str, args: dict, **kw) -> dict:
    result = await session.call_tool(name, args, **kw)
    assert not result.is_error, result.content
    return result.structured_content


async def test_tools_create_wait_result_and_resource(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        create = next(t for t in tools if t.name == "create_task")
        assert {"title", "description"} <= set(create.input_schema["required"])
        assert create.output_schema["properties"]["task_id"]
        task = await call(session, "create_task", {"title": "Review", "description": "Summarize: fast and cheap"})
        assert task["status"] == "queued" and task["task_id"].startswith("task_")
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        done = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30},
                          progress_callback=on_progress)
        assert done["status"] == "completed"
        assert done["result"].startswith('Demo result for "Review"')
        assert progress and progress[-1][2].startswith("completed")
        assert all(total == 30 for _v, total, _m in progress)
        resource = await session.read_resource(f"codetether://tasks/{task['task_id']}/result")
        assert resource.contents[0].text == done["result"]
        listed = await call(session, "list_tasks", {"status": ["completed"]})
        assert task["task_id"] in [t["task_id"] for t in listed["data"]]
        models = await call(session, "list_models", {})
        assert any(m["id"] == "demo" and m["available"] for m in models["data"])
        assert (await call(session, "list_codebases", {}))["data"] == []
        missing = await session.call_tool("get_task", {"task_id": "task_nope"})
        assert missing.is_error and "task_not_found: no task" in missing.content[0].text


async def test_answer_question_then_cancel(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "Paint it\nASK: Which color?"})
        waiting = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert waiting["status"] == "needs_input"
        assert waiting["required_action"]["prompt"] == "Which color?"
        await call(session, "answer_question", {"task_id": task["task_id"], "message": "Blue"})
        done = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert done["status"] == "completed" and done["result"].startswith("Thanks, noted: Blue.")
        follow = await call(session, "send_message", {"task_id": task["task_id"], "message": "And the gate?"})
        assert follow["delivered_as"] == "follow_up" and follow["task_id"] == task["task_id"]

        slow = await call(session, "create_task", {"title": "Slow", "description": "Wait\nSLEEP: 30"})
        cancelled = await call(session, "cancel_task", {"task_id": slow["task_id"]})
        assert cancelled["status"] == "cancelled"


async def test_answer_question_with_a_choice(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        task = await call(session, "create_task", {"title": "Fence", "description": "ASK: Which color? [red|green]"})
        waiting = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert waiting["required_action"]["kind"] == "question"
        assert waiting["required_action"]["options"] == ["red", "green"]
        refused = await session.call_tool("answer_question", {"task_id": task["task_id"], "choice": "blue"})
        assert refused.is_error and "invalid_choice" in refused.content[0].text
        await call(session, "answer_question", {"task_id": task["task_id"], "choice": "red"})
        done = await call(session, "wait_for_task", {"task_id": task["task_id"], "timeout_seconds": 30})
        assert done["status"] == "completed" and done["result"].startswith("Thanks, noted: red.")


async def test_refused_without_a_token_or_with_a_bad_one(live):
    async with httpx.AsyncClient() as anon:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        r = await anon.post(f"{live.url}/mcp", json=body,
                            headers={"Accept": "application/json, text/event-stream"})
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        assert f'resource_metadata="{live.url}/.well-known/oauth-protected-resource"' in challenge
        bad = await anon.post(f"{live.url}/mcp", json=body, headers={"Authorization": "Bearer ct_nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    with pytest.raises(Exception):  # noqa: B017 - the SDK reports the 401 as a transport error
        async with mcp_session(live) as session:
            await session.list_tools()


async def test_capabilities_declare_only_what_is_served(live, user):
    """tools and resources, nothing that changes or can be watched; no prompts, completions or
    logging, whose methods are not found."""
    headers = {**user.headers, "Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "capabilities-test", "version": "1"}}}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        r = await http.post("/mcp", json=init)
        assert r.status_code == 200, r.text
        result = json.loads(r.text.split("data: ", 1)[1])["result"]
        assert result["capabilities"] == {"tools": {"listChanged": False},
                                          "resources": {"subscribe": False, "listChanged": False}}
        unserved = {"prompts/list": {}, "logging/setLevel": {"level": "info"},
                    "resources/subscribe": {"uri": "codetether://tasks/task_x"},
                    "completion/complete": {"ref": {"type": "ref/resource", "uri": "codetether://tasks/{task_id}"},
                                            "argument": {"name": "task_id", "value": "task_"}}}
        for method, params in unserved.items():
            r = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": method, "params": params},
                                headers={"MCP-Protocol-Version": "2025-11-25"})
            assert json.loads(r.text.split("data: ", 1)[1])["error"]["code"] == -32601, (method, r.text)


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info) -> None:
        self.client = client_info


async def test_oauth_discovery_registration_and_pkce_code_flow_token_works_on_mcp(live, db):
    email = f"mcp-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(db, email, tier="pro", password=PASSWORD)
    async with httpx.AsyncClient() as anon:
        prm = (await anon.get(f"{live.url}/.well-known/oauth-protected-resource")).json()
        assert prm["resource"] == f"{live.url}/mcp" and prm["authorization_servers"] == [live.url]
        meta = (await anon.get(f"{live.url}/.well-known/oauth-authorization-server")).json()
        assert meta["registration_endpoint"] == f"{live.url}/oauth/register"

    browser = httpx.AsyncClient(base_url=live.url)
    redirect = "http://127.0.0.1:9/mcp-callback"
    code: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        # The "browser": sign in and approve, then read the code off the redirect.
        params = dict(parse_qsl(urlsplit(url).query))
        assert params["code_challenge_method"] == "S256"
        r = await sign_in_and_consent(browser, params, email)
        assert r.status_code == 302, r.text
        code.update(dict(parse_qsl(urlsplit(r.headers["location"]).query)))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=code["code"], state=code.get("state"))

    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=f"{live.url}/mcp",
        client_metadata=OAuthClientMetadata(client_name="Test MCP host", redirect_uris=[redirect],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], scope="tasks:read tasks:write"),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with browser:
        async with mcp_session(live, auth=auth) as session:
            task = await call(session, "create_task", {"title": "Via OAuth", "description": "Hello"})
            assert task["task_id"].startswith("task_")
    assert storage.client is not None and storage.client.client_id.startswith("cli_")
    assert storage.tokens is not None
    me = await live.stack.http.get("/v1/automation/me",
                                   headers={"Authorization": f"Bearer {storage.tokens.access_token}"})
    assert me.json()["auth_method"] == "oauth" and me.json()["email"] == email


async def test_dynamic_registration_rules(live, settings):
    async with httpx.AsyncClient(base_url=live.url) as anon:
        ok = await anon.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:7/cb"], "client_name": "X"})
        assert ok.status_code == 201, ok.text
        assert ok.json()["token_endpoint_auth_method"] == "none" and "client_secret" not in ok.json()
        assert "account:manage" not in ok.json()["scope"].split()
        bad = await anon.post("/oauth/register", json={"redirect_uris": ["http://example.com/cb"]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_redirect_uri"
        bad = await anon.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:7/cb"],
                                                       "scope": "account:manage"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"
        # Rate-limited per client address (a limit of two an hour from here on).
        live.stack.settings.oauth_registrations_per_hour = 2
        for _ in range(2):
            more = await anon.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:7/cb"]})
            assert more.status_code == 201
        over = await anon.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:7/cb"]})
        assert over.status_code == 429 and over.json()["error"] == "temporarily_unavailable"
        assert int(over.headers["retry-after"]) >= 1
    live.stack.settings.oauth_dynamic_registration = False
    try:
        async with httpx.AsyncClient(base_url=live.url) as anon:
            off = await anon.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:7/cb"]})
            assert off.status_code == 404
            assert "registration_endpoint" not in (await anon.get("/.well-known/oauth-authorization-server")).json()
    finally:
        live.stack.settings.oauth_dynamic_registration = True


async def test_create_task_attachments_follow_the_service_rules(live, user):
    async with mcp_session(live, headers=user.headers) as session:
        refused = await session.call_tool("create_task", {
            "title": "t", "description": "d", "attachments": [{"file_id": "file_01j00000000000000000000000"}]})
        assert refused.is_error and "file_not_found" in refused.content[0].text
        refused = await session.call_tool("create_task", {
            "title": "t", "description": "d", "attachments": [{"url": "ftp://example.com/a.csv"}]})
        assert refused.is_error and "invalid_attachment_url" in refused.content[0].text
