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


def test_embed_frame_may_be_framed_by_the_partner_only():
    # The one page meant to be framed: no X-Frame-Options, frame-ancestors names the partner's origins.
    from codetether.api.embed.page import frame_headers

    assert list(frame_headers(["https://app.example.com"]).items()) == [
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
         "form-action 'none'; base-uri 'none'; frame-ancestors https://app.example.com"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    assert "frame-ancestors 'none'" in frame_headers([])["Content-Security-Policy"]
