"""Operational routes: ``/healthz`` (alive), ``/readyz`` (a create would work now).

Readiness checks what a create needs: the database, the Temporal namespace, and CodeTether's search
attributes in that namespace. When one is missing the answer is ``503`` problem+json whose
``detail`` names the fix, so an orchestrator never routes traffic to an API whose creates all fail.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from codetether.api.deps import State
from codetether.api.edge.errors import PROBLEM_JSON, problem_body
from codetether.core.temporal import SEARCH_ATTRIBUTES_FIX, missing_search_attributes

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="Process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", summary="A task create would work now",
            responses={503: {"description": "Not ready: problem+json whose `detail` names the fix, with `checks`",
                             "content": {"application/problem+json": {"schema": {"type": "object"}}}}})
async def readyz(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    fixes: list[str] = []
    try:
        async with state.db.session() as s:
            await asyncio.wait_for(s.execute(text("SELECT 1")), timeout=3)
        checks["database"] = "ok"
    except Exception as err:  # noqa: BLE001
        checks["database"] = f"error: {type(err).__name__}"
        fixes.append("the database is unreachable: check CODETETHER_DATABASE_URL")
    try:
        client = await state.temporal()
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as err:  # noqa: BLE001
        client = None
        checks["temporal"] = f"error: {getattr(err, 'detail', None) or type(err).__name__}"
        fixes.append("Temporal is unreachable: check CODETETHER_TEMPORAL_ADDRESS and CODETETHER_TEMPORAL_NAMESPACE")
    if client is None:
        checks["search_attributes"] = "unknown"
    elif state.search_attributes_ready:
        checks["search_attributes"] = "ok"
    else:
        try:
            missing = await asyncio.wait_for(missing_search_attributes(client), timeout=3)
        except Exception as err:  # noqa: BLE001 - e.g. the namespace does not exist
            missing = None
            checks["search_attributes"] = f"error: {getattr(err, 'message', None) or type(err).__name__}"
            fixes.append(f"cannot read the search attributes of namespace {client.namespace!r}")
        if missing == []:
            state.search_attributes_ready = True
            checks["search_attributes"] = "ok"
        elif missing:
            checks["search_attributes"] = "missing: " + ", ".join(missing)
            fixes.append(
                f"Temporal namespace {client.namespace!r} lacks search attributes {', '.join(missing)}: "
                + SEARCH_ATTRIBUTES_FIX
            )
    if not fixes:
        return JSONResponse({"status": "ok", "checks": checks})
    body = problem_body(503, "not_ready", "; ".join(fixes), title="Not ready")
    body["checks"] = checks
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
