"""Server-rendered HTML of the reply link: the question with an answer box, and the outcomes.

One small page, inline CSS, no script and no external assets. Every value is escaped; the form
posts back to the same URL only.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import HTMLResponse

from codetether.api.edge.answer_form import fields_html
from codetether.api.edge.markdown import render_markdown
from codetether.api.edge.pages import page_headers

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;margin:0;color:#1d2330}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:10px;padding:2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.25rem;margin:0 0 .4rem}
.muted{color:#5d6675;font-size:.9rem;margin:0 0 1.2rem}
blockquote{margin:0 0 1.2rem;padding:.8rem 1rem;background:#f0f3fb;border-left:4px solid #2f5bd3;
border-radius:4px;white-space:pre-wrap}
label{display:block;margin:.4rem 0 .3rem;font-weight:600}
textarea{width:100%;box-sizing:border-box;min-height:8rem;padding:.55rem;border:1px solid #c5cad3;
border-radius:6px;font:inherit}
button{padding:.6rem 1.1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;
font-size:1rem;cursor:pointer;margin-top:1rem}
.row{display:flex;gap:.6rem}.options{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}
button.secondary{background:#fff;color:#8a1c12;border-color:#8a1c12}
button.option{background:#fff;color:#2f5bd3;margin-top:0}
.plan{border:1px solid #dfe3ea;border-radius:6px;padding:.2rem 1rem;margin:0 0 1.2rem;overflow-x:auto}
fieldset{border:0;padding:0;margin:0 0 .6rem}input,select{width:100%;box-sizing:border-box;padding:.45rem;
border:1px solid #c5cad3;border-radius:6px;font:inherit}input[type=checkbox]{width:auto}
.confirm{background:#f0f3fb;padding:.8rem 1rem;border-radius:6px;margin-bottom:1.2rem}
.ok{background:#e8f5ec;color:#1e5e32;padding:.8rem;border-radius:6px}
.error{background:#fdecea;color:#8a1c12;padding:.8rem;border-radius:6px}
"""

# Not framed, not cached, not leaking the token through Referer; forms post only to this origin.
PAGE_HEADERS = page_headers(extra={"X-Robots-Tag": "noindex"})


def _page(title: str, body: str, status: int) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · CodeTether</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def question_page(
    title: str,
    action: dict[str, Any],
    *,
    error: str | None = None,
    answer: str = "",
    status: int = 200,
    preset: dict[str, str] | None = None,
) -> HTMLResponse:
    """The pending action: a question (an answer box, a button per option, a form for its
    answer_schema) or an approval (the plan, rendered, with Approve and Reject). ``preset`` (a
    ``choice`` or ``decision`` from a link of the email) asks to confirm that one answer first:
    opening a link never answers anything by itself."""
    err = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    kind = action.get("kind") or "question"
    confirm = _confirm(preset) if preset else ""
    if kind in ("approval", "budget"):
        artifact = action.get("artifact") or {}
        shown = (f"<article id=plan class=plan>{render_markdown(artifact.get('content'))}</article>"
                 if artifact.get("content") else "")
        body = (
            f"<h1>{escape(title)}</h1><p class=muted>{escape(action.get('prompt') or '')}</p>{shown}{err}{confirm}"
            "<form method=post>"
            "<label for=message>Comments</label>"
            f"<textarea id=message name=message maxlength=100000 placeholder='What should change (sent back with a "
            f"rejection)'>{escape(answer)}</textarea>"
            "<div class=row><button type=submit name=decision value=approve id=approve>Approve</button>"
            "<button type=submit name=decision value=reject id=reject class=secondary>Reject</button></div></form>"
        )
        return _page(title, body, status)
    options = action.get("options") or []
    buttons = "".join(
        f"<button type=submit name=choice value='{escape(o, quote=True)}' class=option>{escape(o)}</button>" for o in options
    )
    schema = action.get("answer_schema")
    fields = f"<fieldset id=answer-form>{fields_html(schema)}</fieldset>" if schema else ""
    required = "" if options or schema else " required"
    body = (
        f"<h1>{escape(title)}</h1><p class=muted>The agent working on this task asks:</p>"
        f"<blockquote id=question>{escape(action.get('prompt') or '')}</blockquote>{err}{confirm}"
        "<form method=post>"
        + (f"<div class=options id=options>{buttons}</div>" if buttons else "")
        + fields
        + "<label for=message>Answer</label>"
        f"<textarea id=message name=message{required} maxlength=100000>{escape(answer)}</textarea>"
        "<button type=submit id=send>Send answer</button></form>"
    )
    return _page(title, body, status)


def _confirm(preset: dict[str, str]) -> str:
    name, value = next(iter(preset.items()))
    label = {"approve": "Approve", "reject": "Reject"}.get(value, value) if name == "decision" else value
    return (
        "<form method=post id=confirm class=confirm>"
        f"<input type=hidden name={escape(name, quote=True)} value='{escape(value, quote=True)}'>"
        f"<p>Your answer: <strong>{escape(label)}</strong></p>"
        f"<button type=submit id=confirm-send>Confirm: {escape(label)}</button></form>"
    )


def sent_page(title: str) -> HTMLResponse:
    body = (
        f"<h1>{escape(title)}</h1>"
        "<p class=ok role=status id=outcome>Thank you: your answer was sent to the agent, and the task goes on.</p>"
        "<p class=muted>This link has done its job and cannot be used again.</p>"
    )
    return _page("Answer sent", body, 200)


def answered_page(title: str) -> HTMLResponse:
    body = (
        f"<h1>{escape(title)}</h1>"
        "<p class=error role=status id=outcome>This question was already answered.</p>"
        "<p class=muted>Each link answers one question once.</p>"
    )
    return _page("Already answered", body, 409)


def not_found_page() -> HTMLResponse:
    body = "<h1>Link not valid</h1><p class=muted id=outcome>This reply link is not valid or has expired.</p>"
    return _page("Link not valid", body, 404)


def message_page(title: str, text: str, status: int) -> HTMLResponse:
    return _page(title, f"<h1>{escape(title)}</h1><p class=error role=alert id=outcome>{escape(text)}</p>", status)
