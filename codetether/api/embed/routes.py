"""The embed face (CONTRACT §14 Embed), outside the OpenAPI document:

- ``GET /embed/v1/codetether.js``: defines the custom element ``<codetether-tasks>`` (no
  framework, no CDN; cacheable with an ``ETag``);
- ``GET /embed/v1/frame/{session_id}``: the page the element frames, which only the registered
  origins of the session's partner may frame (``frame-ancestors``); the secret never travels in
  its URL;
- ``GET /embed/v1/frame.js`` and ``/embed/v1/frame.css``: that page's script and styles;
- ``GET /embed/v1/session``: what the frame's secret is (its end user and expiry), so the element
  renews it in time.

The frame page then calls the REST task routes with the session's secret as its bearer token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from codetether.api.deps import CurrentPrincipal, State
from codetether.api.edge.errors import Problem
from codetether.api.embed.credentials import EMBED_AUTH_METHOD
from codetether.api.embed.page import frame_headers, not_found_page, prefilled_link_page, render_frame
from codetether.api.state import AppState
from codetether.core.ids import iso
from codetether.partners.embed import origins_for_session, partner_of_session
from codetether.partners.suggestions import take_suggestion

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/embed/v1", include_in_schema=False)
SessionId = Annotated[str, PathParam(max_length=40, pattern=r"^emb_[0-9a-z]{1,36}$")]


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str
    media_type: str


_ASSETS: dict[str, Asset] = {}


def asset(name: str, media_type: str) -> Asset:
    found = _ASSETS.get(name)
    if found is None:
        body = (STATIC / name).read_bytes()
        found = _ASSETS[name] = Asset(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', media_type)
    return found


def serve_asset(request: Request, name: str, media_type: str) -> Response:
    a = asset(name, media_type)
    headers = {
        "ETag": a.etag,
        # Short: a new version reaches partners' pages within minutes; revalidation is a 304.
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        # Loaded by the partner's pages (another origin), also under their COEP.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    sent = request.headers.get("if-none-match", "")
    if a.etag in [t.strip().removeprefix("W/") for t in sent.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(a.body, media_type=a.media_type, headers=headers)


@router.get("/codetether.js", operation_id="embedScript")
async def element_script(request: Request) -> Response:
    return serve_asset(request, "codetether.js", "text/javascript; charset=utf-8")


@router.get("/frame.js", operation_id="embedFrameScript")
async def frame_script(request: Request) -> Response:
    return serve_asset(request, "frame.js", "text/javascript; charset=utf-8")


@router.get("/frame.css", operation_id="embedFrameStyles")
async def frame_styles(request: Request) -> Response:
    return serve_asset(request, "frame.css", "text/css; charset=utf-8")


async def frame_prefill(request: Request, state: AppState, session_id: str) -> dict | None:
    """The create fields the form opens with: the guess behind ``?suggestion=`` (a prefilled_url's
    single-use token, taken here for the session's own partner), else None for an empty form."""
    token = request.query_params.get("suggestion")
    if not token or len(token) > 200:
        return None
    partner_id = await partner_of_session(state.db, session_id)
    if partner_id is None:
        return None
    return await take_suggestion(state.db, token, partner_id=partner_id)


@router.get("/frame", operation_id="embedPrefilledLink")
async def prefilled_link() -> HTMLResponse:
    """A guess's prefilled_url opened on its own: it only works through the element (which needs
    the partner's session), so say so; the token stays unused."""
    return HTMLResponse(prefilled_link_page(), status_code=404, headers=frame_headers([]))


@router.get("/frame/{session_id}", operation_id="embedFrame")
async def frame(session_id: SessionId, request: Request, state: State) -> HTMLResponse:
    origins = await origins_for_session(state.db, session_id)
    if origins is None:
        return HTMLResponse(not_found_page(), status_code=404, headers=frame_headers([]))
    html = render_frame(session_id=session_id, origins=origins, catalog=state.catalog,
                        root_path=request.scope.get("root_path", ""), prefill=await frame_prefill(request, state, session_id))
    return HTMLResponse(html, headers=frame_headers(origins))


@router.get("/session", operation_id="embedSession")
async def session_info(principal: CurrentPrincipal) -> JSONResponse:
    if principal.auth_method != EMBED_AUTH_METHOD:
        raise Problem(403, "not_an_embed_session", "this call needs an embed session's client secret")
    extra = principal.extra
    return JSONResponse({
        "session_id": extra["embed_session_id"],
        "end_user_id": extra["end_user_id"],
        "expires_at": iso(extra["embed_expires_at"]),
        "max_cost_usd": extra["max_cost_usd"],
    }, headers={"Cache-Control": "no-store"})
