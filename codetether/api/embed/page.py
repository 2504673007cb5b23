"""The frame page of ``<codetether-tasks>`` (``GET /embed/v1/frame/{session_id}``), rendered on the
server: the new-task form (optionally filled in) and the places ``frame.js`` fills with the end
user's tasks. The page carries no secret: the element hands the session's client secret to the
frame with ``postMessage`` after it loads.

Its headers (:func:`frame_headers`) let only the partner's registered origins frame it
(``frame-ancestors``) and allow nothing but this origin's own script, styles and API calls.
"""

from __future__ import annotations

import json
from html import escape

from codetether.agent.catalog import ModelCatalog
from codetether.api.edge.pages import page_headers

# The create fields a prefill may set (a later suggestion link fills the form with them).
PREFILL_FIELDS = ("title", "prompt", "model", "agent_type")
AGENT_TYPES = ("general", "build", "plan", "explore")
PREFILL_LIMITS = {"title": 200, "prompt": 20_000, "model": 100, "agent_type": 20}


def clean_prefill(raw: dict | None) -> dict[str, str]:
    """The usable part of a prefill: known create fields holding strings, cut to their limits.
    ``description`` is taken as the prompt (a ``POST /tasks`` body fills the form as is)."""
    if not isinstance(raw, dict):
        return {}
    raw = dict(raw)
    if "prompt" not in raw and isinstance(raw.get("description"), str):
        raw["prompt"] = raw["description"]
    out: dict[str, str] = {}
    for name in PREFILL_FIELDS:
        value = raw.get(name)
        if isinstance(value, str) and value.strip():
            out[name] = value[: PREFILL_LIMITS[name]]
    if out.get("agent_type") not in (None, *AGENT_TYPES):
        out.pop("agent_type")
    return out


def frame_csp(origins: list[str]) -> str:
    ancestors = " ".join(origins) if origins else "'none'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        f"form-action 'none'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def frame_headers(origins: list[str]) -> dict[str, str]:
    # No X-Frame-Options: DENY would forbid the framing frame-ancestors allows (and browsers that
    # know CSP ignore it when frame-ancestors is present).
    return page_headers(csp=frame_csp(origins), pragma=False, deny_framing=False)


def _models(catalog: ModelCatalog, chosen: str | None) -> str:
    names = [m.name for m in catalog.public_list() if m.available]
    if chosen and chosen not in names:
        names.append(chosen)
    options = ['<option value="">Default model</option>']
    for name in names:
        sel = " selected" if name == chosen else ""
        options.append(f'<option value="{escape(name)}"{sel}>{escape(name)}</option>')
    return "".join(options)


def _agent_types(chosen: str | None) -> str:
    chosen = chosen or "general"
    return "".join(
        f'<option value="{t}"{" selected" if t == chosen else ""}>{t}</option>' for t in AGENT_TYPES
    )


def render_frame(*, session_id: str, origins: list[str], catalog: ModelCatalog, root_path: str = "",
                 prefill: dict | None = None) -> str:
    fill = clean_prefill(prefill)
    base = f"{root_path}/embed/v1"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tasks</title>
<link rel="stylesheet" href="{escape(base)}/frame.css">
</head>
<body data-session="{escape(session_id)}" data-api="{escape(root_path)}"
      data-origins="{escape(json.dumps(origins))}">
<main>
<form id="new-task" novalidate>
  <label for="prompt">What should be done?</label>
  <textarea id="prompt" name="prompt" rows="3" maxlength="{PREFILL_LIMITS["prompt"]}" required>{escape(fill.get("prompt", ""))}</textarea>
  <div class="row">
    <span class="field"><label for="title">Title (optional)</label>
      <input id="title" name="title" maxlength="200" value="{escape(fill.get("title", ""))}"></span>
    <span class="field"><label for="model">Model</label>
      <select id="model" name="model">{_models(catalog, fill.get("model"))}</select></span>
    <span class="field"><label for="agent_type">Kind</label>
      <select id="agent_type" name="agent_type">{_agent_types(fill.get("agent_type"))}</select></span>
  </div>
  <button type="submit" disabled>Start task</button>
  <p id="form-error" class="error" role="alert"></p>
</form>
<section aria-labelledby="tasks-heading">
  <h2 id="tasks-heading">Your tasks</h2>
  <p id="empty" hidden>No tasks yet.</p>
  <ul id="tasks"></ul>
</section>
<p id="connection" role="status">Connecting…</p>
</main>
<script src="{escape(base)}/frame.js"></script>
</body>
</html>
"""


def not_found_page() -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>"
            "<body><p>This embedded session does not exist.</p></body></html>")


def prefilled_link_page() -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Suggested task</title></head>"
            "<body><p>This link fills in the task form of CodeTether's embedded tasks. It works inside a partner's "
            "page: the page passes it to <code>&lt;codetether-tasks prefilled-url=\"...\"&gt;</code>.</p></body></html>")
