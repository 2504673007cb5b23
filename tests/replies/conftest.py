"""Fixtures of the reply-channel tests: the ``settings`` of this directory sign reply links and
reply addresses (a reply secret, a public base URL, an inbound email domain)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.conftest import make_settings

REPLY_SECRET = "reply-secret-for-tests-0123456789abcdef"
PUBLIC_URL = "https://ct.example.com"
INBOUND_DOMAIN = "reply.ct.example.com"


def reply_settings(temporal_address: str, database_url: str, tmp_path, **overrides):
    values = dict(reply_secret=REPLY_SECRET, public_url=PUBLIC_URL, inbound_email_domain=INBOUND_DOMAIN)
    values.update(overrides)
    return make_settings(temporal_address, database_url, tmp_path, **values)


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    return reply_settings(temporal_address, database_url, tmp_path)


def link_path(reply_url: str) -> str:
    """``/r/<token>`` of a reply_url (the tests' API is served in process or on a loopback port)."""
    parts = urlsplit(reply_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, reply_url
    assert parts.path.startswith("/r/") and not parts.query, reply_url
    return parts.path
