"""A scripted Anthropic messages server: ``POST /v1/messages``, streaming events or one JSON.

Point the ``anthropic`` SDK (or CodeTether through ``ANTHROPIC_BASE_URL``) at :attr:`url`. The
stream follows the documented event order: ``message_start``, per content block
``content_block_start`` / ``content_block_delta``… / ``content_block_stop``, ``message_delta``
(stop reason), ``message_stop``. ``ask_user`` arrives as a ``tool_use`` block whose input is
streamed as ``input_json_delta`` fragments.
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

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 529: "overloaded_error"}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class AnthropicServer(ScriptedServer):
    def message_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    async def _messages(self, request: Request):
        body = await request.json()
        rec = self.record(request.url.path, body, dict(request.headers))
        reply = rec.reply
        if reply is None:
            reply = Reply(kind="error", status=NO_REPLY_STATUS, message=NO_REPLY_MESSAGE)
        if reply.kind == "error":
            rec.finished_at = time.monotonic()
            err_type = _ERROR_TYPES.get(reply.status, "api_error")
            return JSONResponse(
                {"type": "error", "error": {"type": err_type, "message": reply.message}}, status_code=reply.status
            )
        call_id = reply.call_id or f"toolu_scripted_{len(self.requests)}"
        model = body.get("model", "scripted")
        if not body.get("stream"):
            rec.finished_at = time.monotonic()
            return JSONResponse(_message(reply, call_id, model))
        return StreamingResponse(
            stream_with_record(rec, request, _events(reply, call_id, model)), media_type="text/event-stream"
        )


def _blocks(reply: Reply, call_id: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    if reply.kind == "tool":
        blocks.append({"type": "tool_use", "id": call_id, "name": reply.tool_name, "input": tool_arguments(reply)})
    return blocks


def _message(reply: Reply, call_id: str, model: str) -> dict[str, Any]:
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(reply, call_id),
        "stop_reason": "tool_use" if reply.kind == "tool" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


def _events(reply: Reply, call_id: str, model: str):
    yield 0.0, _event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_scripted",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        },
    )
    index = 0
    if reply.text or reply.kind == "text":
        yield 0.0, _event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        )
        for piece in split_text(reply.text, reply.chunks):
            yield reply.delay, _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
            )
        yield 0.0, _event("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    if reply.kind == "tool":
        yield 0.0, _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": call_id, "name": reply.tool_name, "input": {}},
            },
        )
        args = json.dumps(tool_arguments(reply))
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            yield 0.0, _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}},
            )
        yield 0.0, _event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield 0.0, _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if reply.kind == "tool" else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
    )
    yield 0.0, _event("message_stop", {"type": "message_stop"})
