"""Cost of authentication per credential type, and of the OAuth token endpoint.

Runs the API in-process (httpx over ASGI, no network), SQLite+WAL in a temp dir, and measures
sequential requests:

* ``GET /v1/automation/me`` with an API key (``ct_``), an OAuth access token (``cta_``) and an
  external OIDC JWT (RS256, JWKS served on loopback, cached after the first call);
* ``POST /oauth/token`` with ``client_credentials`` (authlib run inline + one insert);
* ``POST /oauth/token`` with ``refresh_token`` (rotation: conditional update + insert).

Prints a Markdown section and writes it to docs/performance.md between the ``oauth`` markers.

    .venv/bin/python bench/oauth_auth.py --requests 400
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codetether.api.app import create_app
from bench.common import write_section
from codetether.accounts.service import create_api_key, create_user
from codetether.core.config import Settings
from codetether.core.db import Database, migrate
from codetether.accounts.oauth_clients import create_oauth_client

BEGIN, END = "<!-- oauth:begin -->", "<!-- oauth:end -->"


async def _issuer() -> tuple[asyncio.AbstractServer, str, object]:
    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench", "use": "sig", "alg": "RS256"})
    holder: dict[str, str] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if "openid-configuration" in line:
            body = {"issuer": holder["issuer"], "jwks_uri": holder["issuer"] + "/certs"}
        else:
            body = KeySet([key]).as_dict(private=False)
        raw = json.dumps(body).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                     + str(len(raw)).encode() + b"\r\n\r\n" + raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    holder["issuer"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/realms/bench"
    return server, holder["issuer"], key


async def _timed(n: int, fn) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _row(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    rps = 1000 / statistics.mean(samples)
    return f"| {name} | {len(samples)} | {p50:.2f} | {p99:.2f} | {rps:.0f} |"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from joserfc import jwt

    tmp = Path(tempfile.mkdtemp(prefix="ct-oauth-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    server, issuer, key = await _issuer()
    settings = Settings(data_dir=tmp, database_url=url, default_model="demo", oidc_issuer=issuer,
                        oidc_audience="bench", rate_limit_ip_per_minute=1_000_000)
    app = create_app(settings, db=db)
    user = await create_user(db, "bench@example.com", tier="enterprise")
    _row_key, api_key = await create_api_key(db, user.id)
    client = await create_oauth_client(db, name="bench", redirect_uris=["http://127.0.0.1/cb"], owner_id=user.id)
    auth = (client["client_id"], client["client_secret"])
    n = args.requests
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        access = (await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)).json()
        now = int(time.time())
        oidc = jwt.encode({"alg": "RS256", "kid": "bench"},
                          {"iss": issuer, "aud": "bench", "sub": "bench-user", "exp": now + 3600, "iat": now,
                           "scope": "tasks:read"}, key)
        creds = []
        for name, token in (("API key `ct_`", api_key), ("OAuth access token `cta_`", access["access_token"]),
                            ("OIDC JWT (RS256, JWKS cached)", oidc)):
            h = {"Authorization": f"Bearer {token}"}
            first = await http.get("/v1/automation/me", headers=h)
            assert first.status_code == 200, first.text
            await _unlimited(db, first.json()["user_id"])  # the OIDC user is created on the free tier
            creds.append((name, h))
        # Interleaved, so a burst of load from elsewhere on the machine hits every row alike.
        samples: dict[str, list[float]] = {name: [] for name, _ in creds}
        for _ in range(n):
            for name, h in creds:
                t0 = time.perf_counter()
                r = await http.get("/v1/automation/me", headers=h)
                samples[name].append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
        rows += [_row(f"`GET /me` with {name}", samples[name]) for name, _ in creds]

        async def cc():
            r = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
            assert r.status_code == 200, r.text
        rows.append(_row("`POST /oauth/token` client_credentials", await _timed(n, cc)))

        # A code grant is not needed to measure refresh: seed one refresh token, then rotate it n times.
        refresh = await _seed_refresh(db, client["client_id"], user.id)
        state = {"refresh": refresh}

        async def rotate():
            r = await http.post("/oauth/token", data={"grant_type": "refresh_token",
                                                      "refresh_token": state["refresh"]}, auth=auth)
            assert r.status_code == 200, r.text
            state["refresh"] = r.json()["refresh_token"]
        rows.append(_row("`POST /oauth/token` refresh_token (rotation)", await _timed(n, rotate)))
    server.close()
    await db.dispose()

    section = "\n".join([
        BEGIN,
        "## Authentication cost per credential, OAuth token endpoint (issue 6)",
        "",
        (f"Command: `.venv/bin/python bench/oauth_auth.py --requests {n}` (API in-process over ASGI, SQLite+WAL, "
         f"sequential requests; measured {time.strftime('%Y-%m-%d', time.gmtime())} on the shared 2-core machine "
         "while other work ran, so compare the rows with each other rather than with other sections)."),
        "",
        "| call | requests | p50 ms | p99 ms | req/s |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        ("Every credential is checked against the database on each request (a revoked key or token is refused "
         "at once); the OIDC row adds the RS256 signature check, its JWKS being cached."),
        END,
    ])
    print(section)
    if not args.no_write:
        write_section(section, BEGIN, END)


async def _unlimited(db: Database, user_id: str) -> None:
    from sqlalchemy import update

    from codetether.core.models import User

    async with db.write_session() as s:
        await s.execute(update(User).where(User.id == user_id).values(tier="enterprise"))
        await s.commit()


async def _seed_refresh(db: Database, client_id: str, user_id: str) -> str:
    import secrets
    from datetime import timedelta

    from codetether.api.oauth.views import ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX
    from codetether.core.ids import new_id, utcnow
    from codetether.core.models import OAuthToken
    from codetether.accounts.credentials import hash_token

    refresh = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write_session() as s:
        s.add(OAuthToken(id=new_id("tok"), family_id=new_id("fam"), client_id=client_id, user_id=user_id,
                         access_token_hash=hash_token(ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)),
                         refresh_token_hash=hash_token(refresh), scope="tasks:read", issued_at=now,
                         expires_at=now + timedelta(hours=1), refresh_expires_at=now + timedelta(days=30)))
        await s.commit()
    return refresh


if __name__ == "__main__":
    asyncio.run(main())
