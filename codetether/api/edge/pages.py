"""The security headers of every HTML page the API serves: never framed (clickjacking on buttons
that act), never cached, never sniffed, with a Content-Security-Policy.

:data:`PAGE_HEADERS` is what the self-contained pages send (OAuth sign-in and consent in
``codetether/api/oauth/pages.py``; the reply-link pages of ``codetether/api/reply/pages.py`` add
``X-Robots-Tag``). The console (``codetether/api/console/web.py``) loads its own scripts and
styles, so it asks :func:`page_headers` for its policy. The one page meant to be framed, the
embed's frame (``codetether/api/embed/page.py``), drops ``X-Frame-Options`` and names who may frame
it in ``frame-ancestors``.
"""

from __future__ import annotations

# Inline styles only, no scripts; forms post to this origin.
SELF_CONTAINED_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


def page_headers(
    *,
    csp: str = SELF_CONTAINED_CSP,
    referrer: str = "no-referrer",
    pragma: bool = True,
    deny_framing: bool = True,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    if pragma:
        headers["Pragma"] = "no-cache"
    if deny_framing:
        headers["X-Frame-Options"] = "DENY"
    headers.update({
        "Content-Security-Policy": csp,
        "Referrer-Policy": referrer,
        "X-Content-Type-Options": "nosniff",
    })
    headers.update(extra or {})
    return headers


PAGE_HEADERS = page_headers()
