"""The embed face over HTTP (CONTRACT §14 Embed): ``codetether.js`` is cacheable with an ETag; the
frame page may be framed only by the session's partner origins (CSP ``frame-ancestors``, no
``X-Frame-Options``), carries no secret, and opens its form filled in from a prefill."""

from __future__ import annotations

from codetether.agent.catalog import ModelCatalog
from codetether.api.embed.page import clean_prefill, render_frame
from tests.partners.conftest import (
    client_credentials,
    embed_session,
    exchanged_end_user,
)


async def test_the_element_script_is_cacheable(api):
    r = await api.get("/embed/v1/codetether.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "customElements.define(\"codetether-tasks\"" in r.text
    etag = r.headers["etag"]
    assert etag.startswith('"') and "public" in r.headers["cache-control"]
    again = await api.get("/embed/v1/codetether.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await api.get("/embed/v1/codetether.js", headers={"If-None-Match": '"other"'})).status_code == 200
    for asset in ("/embed/v1/frame.js", "/embed/v1/frame.css"):
        assert (await api.get(asset)).status_code == 200


async def test_only_the_partners_origins_may_frame_the_page(api, make_partner):
    acme = await make_partner(origins=["http://localhost:3000", "https://app.example.com"])
    acme.token = await client_credentials(api, acme)
    session = await embed_session(api, acme, await exchanged_end_user(api, acme, "ada"))

    r = await api.get(f"/embed/v1/frame/{session['session_id']}")
    assert r.status_code == 200, r.text
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "http://localhost:3000 https://app.example.com"
    assert directives["script-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert "x-frame-options" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    assert session["client_secret"] not in r.text and session["client_secret"].split(".")[1] not in r.text
    assert 'id="new-task"' in r.text and 'src="/embed/v1/frame.js"' in r.text

    missing = await api.get("/embed/v1/frame/emb_01aaaaaaaaaaaaaaaaaaaaaaaa")
    assert missing.status_code == 404
    assert "frame-ancestors 'none'" in missing.headers["content-security-policy"]
    assert (await api.get("/embed/v1/frame/not-a-session")).status_code == 422
    # The rest of the service keeps refusing to be framed.
    assert "frame-ancestors 'none'" in (await api.get("/docs")).headers["content-security-policy"]


def test_a_prefill_fills_the_form(settings):
    catalog = ModelCatalog.from_settings(settings)
    prefill = {"title": "Weekly <report>", "description": "Summarise the sales.", "model": "demo",
               "agent_type": "explore", "webhook_url": "https://evil.example"}
    assert clean_prefill(prefill) == {"title": "Weekly <report>", "prompt": "Summarise the sales.", "model": "demo",
                                      "agent_type": "explore"}
    html = render_frame(session_id="emb_01x", origins=["https://app.example.com"], catalog=catalog, prefill=prefill)
    assert 'value="Weekly &lt;report&gt;"' in html
    assert ">Summarise the sales.</textarea>" in html
    assert '<option value="demo" selected>' in html and '<option value="explore" selected>' in html
    assert "evil" not in html
    empty = render_frame(session_id="emb_01x", origins=[], catalog=catalog)
    assert "required></textarea>" in empty and '<option value="general" selected>' in empty
    assert clean_prefill({"agent_type": "root", "prompt": 3}) == {}
