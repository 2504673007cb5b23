"""The web console face (``/console``): server-rendered pages on the same ``core/`` services as
the REST API. :func:`install` mounts it on the app (called from ``codetether/api/app.py``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from codetether.api.console.web import HERE, PREFIX, render_error


def install(app: FastAPI, _state) -> None:
    from codetether.api.console import account, artifacts, auth, claim, oidc, tasklist, tasks, webhooks
    from codetether.api.edge.errors import HTML_FACES

    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    for module in (auth, claim, oidc, tasklist, tasks, artifacts, account, webhooks):
        app.include_router(module.router)
    HTML_FACES[PREFIX] = render_error
