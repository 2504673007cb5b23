"""Independent signature checks (recomputed here, not with codetether.webhooks.signing) and API polling helpers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import httpx

from tests.support.receiver import Received


def expected_hex(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def expected_v1(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def assert_signed(req: Received, secret: str) -> None:
    h = req.headers
    assert h["content-type"] == "application/json"
    assert h["user-agent"].startswith("CodeTether-Webhooks/")
    assert h["x-codetether-signature"] == expected_hex(secret, req.body)
    assert h["webhook-timestamp"] == h["x-codetether-timestamp"]
    assert expected_v1(secret, h["webhook-id"], h["webhook-timestamp"], req.body) in h["webhook-signature"].split(" ")


async def wait_deliveries(
    api: httpx.AsyncClient, webhook_id: str, headers: dict, done, timeout: float = 60.0
) -> list[dict]:
    """Polls the deliveries endpoint until ``done(deliveries)`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=headers)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if done(data):
            return data
        if loop.time() > deadline:
            raise AssertionError(f"deliveries never settled: {data}")
        await asyncio.sleep(0.1)


async def wait_webhook(api: httpx.AsyncClient, webhook_id: str, headers: dict, done, timeout: float = 60.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.get(f"/v1/webhooks/{webhook_id}", headers=headers)
        assert r.status_code == 200, r.text
        if done(r.json()):
            return r.json()
        if loop.time() > deadline:
            raise AssertionError(f"webhook never reached the state: {r.json()}")
        await asyncio.sleep(0.1)
