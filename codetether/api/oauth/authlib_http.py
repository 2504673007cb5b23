"""The HTTP side of authlib, adapted to Starlette: a request built from what a route already
read (authlib must do no I/O), and authlib's ``(status, body, headers)`` answer turned into a
response (RFC 6749 JSON, or a redirect back to the client).

Used by the routes of ``/oauth/authorize`` (``codetether/api/oauth/authorize.py``) and
``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect`` (``codetether/api/oauth/tokens.py``).
"""

from __future__ import annotations

from collections import defaultdict

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from fastapi.responses import JSONResponse, Response


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An authlib request built from what a Starlette route already read (no I/O inside authlib)."""

    def __init__(self, method: str, headers: dict[str, str], query: list[tuple[str, str]],
                 form: list[tuple[str, str]]) -> None:
        # TLS is terminated in front of the service; authlib's own http:// check would refuse
        # every loopback and proxied deployment, so it is given a neutral https URI.
        super().__init__(method, "https://codetether.invalid/oauth", headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self) -> dict:
        return self._args

    @property
    def form(self) -> dict:
        return self._form


def to_response(status: int, body, headers: list[tuple[str, str]]) -> Response:
    if status in (301, 302, 303):
        response = Response(status_code=status, headers={"Cache-Control": "no-store"})
        for k, v in headers:
            response.headers[k] = v
        return response
    response = JSONResponse(body if body not in ("", None) else {}, status_code=status)
    for k, v in headers:
        if k.lower() != "content-type":
            response.headers[k] = v
    response.headers["Cache-Control"] = "no-store"
    return response
