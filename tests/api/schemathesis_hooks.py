"""Schemathesis hooks for tests/api/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

Idempotency keys: a client makes a fresh key for each new request, while the generator sends
the same boundary values (``"0"``, ``"!"``) to every operation, which the API rightly answers
with 422 ``idempotency_key_reused``. A well-formed generated key gets a unique suffix; a
malformed one is sent as generated (it must be refused).

Generated bodies may carry URLs (webhook_url, callback_url, a subscription's url). Validating
them makes the API resolve the host name; the test machine must not talk to anything but
loopback, so any string that looks like a URL is pointed at a closed loopback port. Everything
else the generator made is sent unchanged.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

URL_FIELDS = ("webhook_url", "callback_url", "url", "redirect_uri", "redirect_uris")
LOOPBACK = "https://127.0.0.1:9/hook"


def _rewrite(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return LOOPBACK
    if isinstance(value, list):
        return [_rewrite(v) for v in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    _unique_idempotency_key(case.headers)
    _unique_idempotency_key(kwargs.get("headers"))
    body = case.body
    if isinstance(body, dict):
        for name in URL_FIELDS:
            if name in body:
                body[name] = _rewrite(body[name])


_KEY = re.compile(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$")


def _unique_idempotency_key(headers: dict[str, Any] | None) -> None:
    if not headers:
        return
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and _KEY.match(headers[name]):
            headers[name] = f"{headers[name][:200]}-{uuid.uuid4().hex}"
