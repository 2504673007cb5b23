"""The shared row helpers of codetether/core/db.py: "the caller's row, or 404" and "re-read until"."""

import asyncio

import pytest

from codetether.core.db import poll_until


async def test_poll_until_stops_when_done():
    values = iter(range(100))

    async def read():
        return next(values)

    assert await poll_until(read, lambda v: v == 3, 5.0, 0.001) == 3


async def test_poll_until_returns_the_last_value_at_the_deadline():
    calls = []

    async def read():
        calls.append(1)
        return len(calls)

    seen = []

    async def on_read(value, elapsed):
        seen.append((value, elapsed >= 0))

    loop = asyncio.get_running_loop()
    start = loop.time()
    value = await poll_until(read, lambda v: False, 0.05, 0.01, on_read=on_read)
    assert value == len(calls) and len(calls) >= 2 and seen[-1] == (value, True)
    assert loop.time() - start < 1.0


@pytest.mark.parametrize("timeout", [0.0])
async def test_poll_until_reads_once_without_time(timeout):
    async def read():
        return "row"

    assert await poll_until(read, lambda v: False, timeout, 1.0) == "row"
