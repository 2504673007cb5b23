"""Refusals the API edge makes before an OAuth endpoint runs (the per-address rate limit, the body
limit) are answered in OAuth's error format, ``{"error", "error_description"}`` as
``application/json`` (RFC 6749 section 5.2): strict OAuth clients such as oauth4webapi read an
error body only from a 4xx ``application/json`` response, never from problem+json. The JSON API
under ``/v1`` keeps answering problem details."""

from __future__ import annotations

import httpx
import pytest

from codetether.api.edge.errors import MAX_BODY_BYTES
from tests.conftest import make_settings
from tests.oauth.conftest import basic

IP_LIMIT = 3


@pytest.fixture
def settings(temporal_address, database_url, tmp_path):
    return make_settings(temporal_address, database_url, tmp_path, rate_limit_ip_per_minute=IP_LIMIT)


def _assert_oauth_error(r: httpx.Response, status: int, error: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    assert body["error_description"]
    assert r.headers["cache-control"] == "no-store"
    return body


async def test_token_endpoint_over_the_limit_answers_oauth_error_json(api, confidential_client):
    form = {"grant_type": "client_credentials"}
    for _ in range(IP_LIMIT):
        r = await api.post("/oauth/token", data=form, auth=basic(confidential_client))
        assert r.status_code == 200, r.text
        assert r.headers["x-ratelimit-limit"] == str(IP_LIMIT)
    r = await api.post("/oauth/token", data=form, auth=basic(confidential_client))
    body = _assert_oauth_error(r, 429, "temporarily_unavailable")
    assert "rate limit" in body["error_description"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit"] == str(IP_LIMIT) and r.headers["x-ratelimit-remaining"] == "0"
    assert int(r.headers["x-ratelimit-reset"]) > 0
    assert r.headers["x-request-id"]

    # A bearer token on an OAuth endpoint is counted against the address after the fact: the same answer.
    r = await api.post("/oauth/revoke", data={"token": "x"}, auth=basic(confidential_client),
                       headers={"Authorization": "Bearer ct_not_a_key"})
    _assert_oauth_error(r, 429, "temporarily_unavailable")
    assert int(r.headers["retry-after"]) >= 1

    # The JSON API under /v1 answers the same refusal as a problem.
    r = await api.get("/v1/automation/me")
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect"])
async def test_oversized_oauth_form_is_an_oauth_invalid_request(api, path):
    big = b"grant_type=client_credentials&pad=" + b"a" * (MAX_BODY_BYTES + 1)
    r = await api.post(path, content=big, headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(r, 413, "invalid_request")


async def test_oversized_streamed_oauth_form_is_an_oauth_invalid_request(api):
    async def chunks():
        yield b"grant_type=client_credentials&pad="
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"a" * 65536

    r = await api.post("/oauth/token", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(r, 413, "invalid_request")
