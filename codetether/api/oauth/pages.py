"""Server-rendered HTML for ``/oauth/authorize``: the sign-in form, the consent page, error pages.

Plain HTML and a little CSS, no JavaScript. Every value is escaped. The sign-in form carries
the OAuth request parameters as hidden fields; the consent form carries only the id of the
authorization request stored server-side. Both post back to ``/oauth/authorize`` only.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from codetether.accounts.credentials import SCOPES
from codetether.api.edge.pages import PAGE_HEADERS

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;margin:0;color:#1d2330}
main{max-width:26rem;margin:4rem auto;background:#fff;border-radius:10px;padding:2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 1rem}
label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c5cad3;
border-radius:6px;font-size:1rem}
button{padding:.6rem 1.1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;font-size:1rem;
cursor:pointer;margin-top:1.2rem}
button.secondary{background:#fff;color:#2f5bd3}
.error{background:#fdecea;color:#8a1c12;padding:.7rem;border-radius:6px}
ul.scopes li{margin:.4rem 0}
.muted{color:#5d6675;font-size:.9rem}
.unverified{background:#fff4e0;color:#7a4b00;padding:.7rem;border-radius:6px}
.badge{font-size:.75rem;font-weight:600;background:#fff4e0;color:#7a4b00;border-radius:4px;padding:.1rem .35rem}
code{background:#f0f1f4;padding:.1rem .3rem;border-radius:4px}
"""



def _page(title: str, body: str, status: int = 200, *, form_target: str | None = None) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · CodeTether</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    headers = dict(PAGE_HEADERS)
    if form_target:
        # form-action also governs where the form's answer may redirect: the client's exact origin.
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {form_target}")
    return HTMLResponse(html, status_code=status, headers=headers)


def _hidden(params: list[tuple[str, str]]) -> str:
    return "".join(
        f"<input type=hidden name='{escape(k, quote=True)}' value='{escape(v, quote=True)}'>" for k, v in params
    )


def _client(name: str, unverified: bool) -> str:
    badge = " <span class=badge id=unverified-client>unverified</span>" if unverified else ""
    return f"<strong>{escape(name)}</strong>{badge}"


def _unverified_notice(unverified: bool) -> str:
    # A self-registered client names itself: "Zapier" may be anyone.
    if not unverified:
        return ""
    return ("<p class=unverified id=unverified-notice>This application registered itself with this server. "
            "Its name is its own claim and has not been checked: allow it only if you started this connection "
            "yourself, from the application you expect.</p>")


def signin_page(params: list[tuple[str, str]], client_name: str, csrf: str, *, error: str | None = None,
                email: str = "", status: int = 200, unverified: bool = False) -> HTMLResponse:
    err = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    body = (
        f"<h1>Sign in to CodeTether</h1>"
        f"<p class=muted>{_client(client_name, unverified)} wants to connect to your account.</p>"
        f"{_unverified_notice(unverified)}{err}"
        "<form method=post action='/oauth/authorize'>"
        f"{_hidden(params)}<input type=hidden name=csrf_token value='{escape(csrf, quote=True)}'>"
        "<input type=hidden name=action value=signin>"
        f"<label for=email>Email</label><input id=email name=email type=email autocomplete=username required "
        f"value='{escape(email, quote=True)}'>"
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<button type=submit id=signin>Sign in</button></form>"
    )
    return _page("Sign in", body, status)


def consent_page(request_id: str, client_name: str, email: str, scopes: list[str],
                 redirect_uri: str, csrf: str, *, unverified: bool = False) -> HTMLResponse:
    # Only the id of the server-side authorization request travels in the form: what is approved
    # is what was validated when this page was made, whatever a tampered form says.
    items = "".join(
        f"<li><code>{escape(s)}</code> — {escape(SCOPES.get(s, s))}</li>" for s in scopes
    ) or "<li>No access to your data beyond your identity.</li>"
    target = urlsplit(redirect_uri)
    body = (
        f"<h1>Authorize {escape(client_name)}</h1>"
        f"<p>Signed in as <strong id=signed-in-as>{escape(email)}</strong>.</p>"
        f"{_unverified_notice(unverified)}"
        f"<p>{_client(client_name, unverified)} is asking to:</p><ul class=scopes id=scopes>{items}</ul>"
        f"<p class=muted>You will be sent back to <code>{escape(target.scheme)}://{escape(target.netloc)}</code>. "
        "You can revoke this access at any time.</p>"
        "<form method=post action='/oauth/authorize'>"
        f"{_hidden([('request_id', request_id)])}<input type=hidden name=csrf_token value='{escape(csrf, quote=True)}'>"
        "<button type=submit name=action value=approve id=approve>Allow</button> "
        "<button type=submit name=action value=deny id=deny class=secondary>Deny</button> "
        "<button type=submit name=action value=signout id=signout class=secondary>Use another account</button>"
        "</form>"
    )
    origin_ok = target.scheme in ("http", "https") and re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", target.netloc or "")
    return _page("Authorize", body, form_target=f"{target.scheme}://{target.netloc}" if origin_ok else None)


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    body = (
        f"<h1>{escape(title)}</h1><p class=error role=alert id=error>{escape(message)}</p>"
        "<p class=muted>The application that sent you here is misconfigured or the link is outdated. "
        "You have not been redirected anywhere.</p>"
    )
    return _page(title, body, status)
