"""Schemathesis hooks for tests/api/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

Generated bodies may carry URLs (webhook_url, callback_url, a subscription's url). Validating
them makes the API resolve the host name; the test machine must not talk to anything but
loopback, so any string that looks like a URL is pointed at a closed loopback port. Everything
else the generator made is sent unchanged.
"""

from __future__ import annotations

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
    body = case.body
    if isinstance(body, dict):
        for name in URL_FIELDS:
            if name in body:
                body[name] = _rewrite(body[name])
