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
    codetether partners create --name N --origin URL [--origin URL ...] (--jwks-uri URL | --shared-secret) [--test]
    codetether partners list

Admin commands work on the configured database whether or not the service runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from codetether.cli.admin import (
    cmd_codebases_create,
    cmd_codebases_list,
    cmd_keys_create,
    cmd_oauth_clients_create,
    cmd_oauth_clients_delete,
    cmd_oauth_clients_list,
    cmd_partners_create,
    cmd_partners_list,
    cmd_users_create,
)
from codetether.cli.dev import cmd_dev
from codetether.cli.processes import cmd_api, cmd_inbound_smtp, cmd_migrate, cmd_worker


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

    pt = sub.add_parser("partners", help="manage partners (CONTRACT §14)").add_subparsers(dest="pt_cmd", required=True)
    ptc = pt.add_parser("create", help="register a partner and print its credentials as JSON (shown once)")
    ptc.add_argument("--name", required=True)
    ptc.add_argument("--origin", action="append", required=True,
                     help="an origin of the partner's pages (https; loopback http with --test); repeatable")
    signing = ptc.add_mutually_exclusive_group(required=True)
    signing.add_argument("--jwks-uri", default=None, help="where the partner publishes the keys it signs JWTs with")
    signing.add_argument("--shared-secret", action="store_true", help="generate an HS256 secret for its JWTs")
    ptc.add_argument("--test", action="store_true", help="a test partner: loopback origins and JWKS allowed")
    ptc.set_defaults(fn=cmd_partners_create)
    ptl = pt.add_parser("list", help="print the partners as JSON")
    ptl.set_defaults(fn=cmd_partners_list)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(args.fn(args))
