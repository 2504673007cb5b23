"""``codetether users|keys|codebases|oauth-clients|partners``: administration on the configured database.

These commands bring the schema to head first and work whether or not the service runs; each
prints JSON (or the new key) on standard output and errors on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from codetether.core.config import Settings, get_settings


async def with_database(settings: Settings, fn):
    """Runs ``fn(db)`` on the configured database, migrated to head first."""
    from codetether.core.db import Database, migrate

    await asyncio.to_thread(migrate, settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        return await fn(db)
    finally:
        await db.dispose()


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
        user = asyncio.run(with_database(settings, lambda db: create_user(db, args.email, tier=args.tier, password=password)))
    except AccountError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"user_id": user.id, "email": user.email, "tier": user.tier}))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from codetether.accounts.credentials import parse_scopes
    from codetether.accounts.service import create_api_key, get_user_by_email

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

    key = asyncio.run(with_database(settings, _go))
    if key is None:
        print(f"error: no user {args.user}", file=sys.stderr)
        return 1
    print(key)
    return 0


def cmd_codebases_create(args: argparse.Namespace) -> int:
    from codetether.codebases.service import (
        CodebaseError,
        codebase_to_dict,
        create_codebase_for_email,
    )

    settings = get_settings()

    async def _go(db):
        return await create_codebase_for_email(
            db, settings, args.user, name=args.name, repository_url=args.repository_url, ref=args.ref,
            push=args.push, description=args.description,
        )

    try:
        row = asyncio.run(with_database(settings, _go))
    except CodebaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({**codebase_to_dict(row), "user_id": row.user_id}))
    return 0


def cmd_codebases_list(args: argparse.Namespace) -> int:
    from codetether.codebases.service import (
        CodebaseError,
        codebase_to_dict,
        list_codebases_for_email,
    )

    settings = get_settings()
    try:
        rows = asyncio.run(with_database(settings, lambda db: list_codebases_for_email(db, args.user)))
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
        out = asyncio.run(with_database(settings, _go))
    except OAuthClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


def cmd_oauth_clients_list(args: argparse.Namespace) -> int:
    from codetether.accounts.oauth_clients import (
        OAuthClientError,
        list_all_oauth_clients,
    )

    settings = get_settings()
    try:
        out = asyncio.run(with_database(settings, lambda db: list_all_oauth_clients(db, owner_email=args.owner)))
    except OAuthClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


def cmd_oauth_clients_delete(args: argparse.Namespace) -> int:
    from codetether.accounts.oauth_clients import delete_oauth_client

    settings = get_settings()
    if not asyncio.run(with_database(settings, lambda db: delete_oauth_client(db, args.client_id))):
        print(f"error: no OAuth client {args.client_id}", file=sys.stderr)
        return 1
    print(json.dumps({"client_id": args.client_id, "deleted": True}))
    return 0


def cmd_partners_create(args: argparse.Namespace) -> int:
    from codetether.partners.registry import PartnerError, create_partner

    settings = get_settings()

    async def _go(db):
        return await create_partner(db, settings, name=args.name, origins=args.origin, jwks_uri=args.jwks_uri,
                                    shared_secret=args.shared_secret, test=args.test)

    try:
        out = asyncio.run(with_database(settings, _go))
    except PartnerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


def cmd_partners_list(args: argparse.Namespace) -> int:
    from codetether.partners.registry import list_partners

    print(json.dumps(asyncio.run(with_database(get_settings(), list_partners))))
    return 0
