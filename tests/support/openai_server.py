"""A scripted OpenAI-compatible server: ``POST /v1/chat/completions``, streaming (SSE) or not.

Point the ``openai`` SDK (or CodeTether through ``OPENAI_BASE_URL``) at :attr:`OpenAIServer.base_url`.
Queue replies with ``reply_text``, ``reply_ask_user``, ``reply_error`` and ``reply_slow``; read
what the model was sent in :attr:`requests`.

    with OpenAIServer() as srv:
        srv.reply_ask_user("Which color?").reply_text("Blue it is.")
        ...
        assert srv.requests[1].body["messages"][-1]["role"] == "tool"
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.support.scripted_http import (
    NO_REPLY_MESSAGE,
    NO_REPLY_STATUS,
    Recorded,
    Reply,
    ScriptedServer,
    split_text,
    stream_with_record,
    tool_arguments,
)


def _sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


class OpenAIServer(ScriptedServer):
    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request):
        body = await request.json()
        rec = self.record(request.url.path, body, dict(request.headers))
        reply = rec.reply
        if reply is None:
            reply = Reply(kind="error", status=NO_REPLY_STATUS, message=NO_REPLY_MESSAGE)
        if reply.kind == "error":
            rec.finished_at = time.monotonic()
            return JSONResponse(
                {"error": {"message": reply.message, "type": "invalid_request_error", "param": None, "code": None}},
                status_code=reply.status,
            )
        call_id = reply.call_id or f"call_{len(self.requests)}"
        model = body.get("model", "scripted")
        if not body.get("stream"):
            rec.finished_at = time.monotonic()
            return JSONResponse(_completion(reply, call_id, model))
        return StreamingResponse(
            stream_with_record(rec, request, _chunks(reply, call_id, model)),
            media_type="text/event-stream",
        )


def _completion(reply: Reply, call_id: str, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    finish = "stop"
    if reply.kind == "tool":
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": reply.tool_name, "arguments": json.dumps(tool_arguments(reply))},
            }
        ] + [
            {"id": f"{call_id}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(reply.more_calls, start=1)
        ]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunks(reply: Reply, call_id: str, model: str):
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    yield 0.0, chunk({"role": "assistant", "content": ""})
    if reply.text:
        for piece in split_text(reply.text, reply.chunks):
            yield reply.delay, chunk({"content": piece})
    elif reply.kind == "text":
        for _ in range(max(0, reply.chunks)):
            yield reply.delay, chunk({"content": ""})
    if reply.kind == "tool":
        args = json.dumps(tool_arguments(reply))
        half = len(args) // 2
        # Arguments arrive in fragments, as real servers send them.
        yield 0.0, chunk(
            {"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": reply.tool_name, "arguments": ""}}]}
        )
        yield 0.0, chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[:half]}}]})
        yield 0.0, chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]})
        for i, (name, more) in enumerate(reply.more_calls, start=1):
            yield 0.0, chunk({"tool_calls": [{"index": i, "id": f"{call_id}_{i}", "type": "function",
                                              "function": {"name": name, "arguments": json.dumps(more)}}]})
        yield 0.0, chunk({}, "tool_calls")
    else:
        yield 0.0, chunk({}, "stop")
    yield 0.0, b"data: [DONE]\n\n"
