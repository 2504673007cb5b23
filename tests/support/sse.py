"""A small Server-Sent Events reader for tests: parses an httpx streaming response into events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass
class SSEvent:
    id: str | None
    event: str
    data: str
    retry: int | None = None


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEvent]:
    """Yields events in order; comment lines (keep-alive pings) are skipped."""
    fields: dict[str, list[str]] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields or "event" in fields:
                retry = fields.get("retry", [None])[-1]
                yield SSEvent(
                    id=fields.get("id", [None])[-1],
                    event=fields.get("event", ["message"])[-1],
                    data="\n".join(fields.get("data", [])),
                    retry=int(retry) if retry is not None else None,
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        fields.setdefault(name, []).append(value)


def parse_sse_text(text: str) -> list[SSEvent]:
    """Parses a whole SSE body (a finished stream)."""
    out: list[SSEvent] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        if "data" in fields or "event" in fields:
            retry = fields.get("retry", [None])[-1]
            out.append(
                SSEvent(
                    id=fields.get("id", [None])[-1],
                    event=fields.get("event", ["message"])[-1],
                    data="\n".join(fields.get("data", [])),
                    retry=int(retry) if retry is not None else None,
                )
            )
    return out
