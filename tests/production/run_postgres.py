"""The production pass of ``make test``: the tests marked ``postgres`` against the real
PostgreSQL and Redis of the machine.

Creates a fresh database on 127.0.0.1:5432 (user postgres, trust auth), points the suite at it with
``CODETETHER_TEST_DATABASE_URL`` and at Redis with ``CODETETHER_REDIS_URL``, runs
``pytest -m postgres``, and drops the database whatever the outcome.

    python -m tests.production.run_postgres [extra pytest args]

``CODETETHER_TEST_PG_URL`` (server) and ``CODETETHER_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/13``) point it elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.production.pg import create_database, drop_database

REDIS_URL = os.environ.get("CODETETHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    finally:
        client.close()


def main(argv: list[str]) -> int:
    check_redis(REDIS_URL)
    name, url = create_database("ct_suite")
    print(f"production pass: PostgreSQL database {name}, Redis {REDIS_URL}", flush=True)
    env = dict(os.environ)
    env.update(
        CODETETHER_TEST_DATABASE_URL=url,
        CODETETHER_REDIS_URL=REDIS_URL,
        CODETETHER_TEST_REQUIRE_POSTGRES="1",
    )
    try:
        cmd = [sys.executable, "-m", "pytest", "-m", "postgres", "-p", "no:cacheprovider", *argv]
        return subprocess.call(cmd, env=env)
    finally:
        drop_database(name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
