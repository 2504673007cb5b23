"""Every HTML face takes its security headers from codetether/api/edge/pages.py; these are the
headers each one sends."""

from codetether.api.console.web import PAGE_HEADERS as CONSOLE
from codetether.api.edge.pages import PAGE_HEADERS
from codetether.api.oauth.pages import PAGE_HEADERS as OAUTH
from codetether.api.reply.pages import PAGE_HEADERS as REPLY

STATIC = [
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]


def test_static_pages():
    assert OAUTH is PAGE_HEADERS and list(OAUTH.items()) == STATIC
    assert list(REPLY.items()) == [*STATIC, ("X-Robots-Tag", "noindex")]


def test_console_pages():
    assert list(CONSOLE.items()) == [
        ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
    ]


def test_console_artifact_downloads():
    # A file a task produced is data, never a page: nothing runs even when it holds HTML.
    from codetether.api.console.artifacts import ARTIFACT_HEADERS

    assert list(ARTIFACT_HEADERS.items()) == [
        ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox"),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
    ]
