"""``codetether api|worker|inbound-smtp|migrate``: one CodeTether process in the foreground.

Deployments run these as separate processes (``Dockerfile``, ``docker-compose.yml``); ``codetether dev``
(``codetether/cli/dev.py``) spawns ``python -m codetether.cli worker`` and ``... api`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from codetether.core.config import Settings, get_settings


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
    from codetether.core.logging import setup_logging
    from codetether.replies.inbound_smtp import serve

    settings = get_settings()
    setup_logging(settings)
    migrate(settings.resolved_database_url)
    asyncio.run(serve(settings, args.host, args.port))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from codetether.core.db import migrate

    settings = get_settings()
    migrate(settings.resolved_database_url)
    print(f"database at head: {settings.resolved_database_url}")
    if args.temporal:
        # A self-hosted cluster gets CodeTether's search attributes here (one-shot, idempotent).
        asyncio.run(register_search_attributes(settings))
        print(f"search attributes registered in namespace {settings.temporal_namespace!r}")
        print(f"file cleanup schedule: {asyncio.run(_cleanup_schedule(settings))}")
    return 0


async def _cleanup_schedule(settings: Settings) -> str:
    from codetether.core.temporal import connect
    from codetether.files.schedule import ensure_cleanup_schedule

    return await ensure_cleanup_schedule(await connect(settings), settings)


async def register_search_attributes(settings: Settings, *, wait_seconds: float = 0) -> None:
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
