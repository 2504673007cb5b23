"""The embed face (``/embed/v1``, CONTRACT §14 Embed): the ``<codetether-tasks>`` element that
partners put in their pages, and the frame page it shows. :func:`install` mounts it on the app
(called from ``codetether/api/app.py``); the routes are in ``routes.py``."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from codetether.api.embed import routes

    app.include_router(routes.router)
