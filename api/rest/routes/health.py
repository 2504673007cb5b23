"""Operational routes: ``/healthz`` (alive), ``/readyz`` (database and Temporal reachable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import State

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="Process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", summary="Database and Temporal are reachable",
            responses={503: {"description": "A dependency is unreachable (same body, status unavailable)",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
async def readyz(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with state.db.session() as s:
            await asyncio.wait_for(s.execute(text("SELECT 1")), timeout=3)
        checks["database"] = "ok"
    except Exception as err:  # noqa: BLE001
        checks["database"] = f"error: {type(err).__name__}"
    try:
        client = await state.temporal()
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as err:  # noqa: BLE001
        checks["temporal"] = f"error: {getattr(err, 'detail', None) or type(err).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
