/*
 * CodeTether embed: the <codetether-tasks> custom element (CONTRACT §14 Embed). No framework, no CDN.
 *
 *   <script src="https://CODETETHER/embed/v1/codetether.js" defer></script>
 *   <codetether-tasks client-secret="ctes_..." session-url="/codetether/session"></codetether-tasks>
 *
 * `prefilled-url` (optional): a guess's prefilled_url; the form opens filled in with that task.
 *
 * The element frames CodeTether's task page (/embed/v1/frame/<session id>) and hands it the client
 * secret with postMessage once it has loaded: the secret never appears in a URL. It renews the
 * secret before it expires by POSTing to `session-url` (a route of the partner's backend that
 * answers {"client_secret": "..."}). Messages from the frame are trusted only from CodeTether's
 * origin and from the element's own frame; they become DOM events on the element:
 * codetether:task-created, codetether:needs-input, codetether:completed, codetether:failed
 * (bubbling, composed, event.detail.task_id), and codetether:session-expired.
 * Theme: CSS variables on the element (--codetether-accent, --codetether-font, --codetether-background,
 * --codetether-text, --codetether-muted, --codetether-border, --codetether-radius, --codetether-height).
 */
(function () {
  "use strict";
  if (!window.customElements || window.customElements.get("codetether-tasks")) return;

  var script = document.currentScript;
  var SRC = new URL(script && script.src ? script.src : "/embed/v1/codetether.js", location.href);
  var ORIGIN = SRC.origin;
  var BASE = new URL("./", SRC).href; // .../embed/v1/
  var THEME = ["accent", "font", "background", "text", "muted", "border", "radius", "danger"];
  var FORWARDED = {
    "codetether:task-created": true,
    "codetether:needs-input": true,
    "codetether:completed": true,
    "codetether:failed": true
  };
  var RENEW_BEFORE_MS = 60 * 1000;
  var RETRY_MS = 15 * 1000;
  var SECRET = /^ctes_(emb_[0-9a-z]{1,36})\.[A-Za-z0-9_-]+$/;

  // A guess's prefilled_url (POST /v1/partner/guess): its single-use token opens the form filled in.
  function suggestionQuery(url) {
    if (!url) return "";
    var token;
    try { token = new URL(url, location.href).searchParams.get("suggestion"); } catch (e) { return ""; }
    return token && /^sgt_[A-Za-z0-9_-]+$/.test(token) ? "?suggestion=" + encodeURIComponent(token) : "";
  }

  function sessionIdOf(secret) {
    var m = SECRET.exec(secret || "");
    return m ? m[1] : null;
  }

  var STYLE =
    ":host{display:block}" +
    "iframe{display:block;width:100%;height:var(--codetether-height,600px);border:0;" +
    "background:transparent;color-scheme:normal}";

  class CodetetherTasks extends HTMLElement {
    static get observedAttributes() {
      return ["client-secret"];
    }

    constructor() {
      super();
      this._root = this.attachShadow({ mode: "open" });
      this._frame = null;
      this._loaded = false;
      this._timer = null;
      this._renewing = false;
      this._onMessage = this._onMessage.bind(this);
    }

    connectedCallback() {
      window.addEventListener("message", this._onMessage);
      this._update();
    }

    disconnectedCallback() {
      window.removeEventListener("message", this._onMessage);
      clearTimeout(this._timer);
    }

    attributeChangedCallback() {
      if (this.isConnected) this._update();
    }

    _update() {
      var sid = sessionIdOf(this.getAttribute("client-secret"));
      if (!sid) return;
      if (this._frame) {
        // A renewed secret: the loaded frame takes it over (the partner, hence the page, is the same).
        if (this._loaded) this._handOver();
        return;
      }
      var style = document.createElement("style");
      style.textContent = STYLE;
      var frame = document.createElement("iframe");
      frame.title = this.getAttribute("frame-title") || "Tasks";
      frame.referrerPolicy = "no-referrer";
      var self = this;
      frame.addEventListener("load", function () {
        self._loaded = true;
        self._handOver();
      });
      frame.src = BASE + "frame/" + encodeURIComponent(sid) + suggestionQuery(this.getAttribute("prefilled-url"));
      this._frame = frame;
      this._root.appendChild(style);
      this._root.appendChild(frame);
    }

    _theme() {
      var computed = getComputedStyle(this);
      var out = {};
      THEME.forEach(function (name) {
        var value = computed.getPropertyValue("--codetether-" + name).trim();
        if (value) out[name] = value;
      });
      return out;
    }

    _handOver() {
      if (!this._frame || !this._frame.contentWindow) return;
      // Addressed to CodeTether's origin only: if the frame navigated elsewhere, nothing is sent.
      this._frame.contentWindow.postMessage(
        { type: "codetether:init", client_secret: this.getAttribute("client-secret"), theme: this._theme() },
        ORIGIN
      );
    }

    _onMessage(event) {
      if (!this._frame || event.origin !== ORIGIN || event.source !== this._frame.contentWindow) return;
      var data = event.data;
      if (!data || typeof data.type !== "string") return;
      if (data.type === "codetether:session") {
        this._schedule((data.detail || {}).expires_at);
      } else if (data.type === "codetether:session-expired") {
        this._renew(true);
      } else if (FORWARDED[data.type]) {
        this._emit(data.type, data.detail || {});
      }
    }

    _emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail: detail }));
    }

    _schedule(expiresAt) {
      clearTimeout(this._timer);
      var at = Date.parse(expiresAt);
      if (isNaN(at) || !this.getAttribute("session-url")) return;
      var self = this;
      this._timer = setTimeout(function () {
        self._renew(false);
      }, Math.max(0, at - Date.now() - RENEW_BEFORE_MS));
    }

    _renew(expired) {
      var url = this.getAttribute("session-url");
      if (!url) {
        if (expired) this._emit("codetether:session-expired", {});
        return;
      }
      if (this._renewing) return;
      this._renewing = true;
      var self = this;
      fetch(url, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) throw new Error("session-url answered " + r.status);
          return r.json();
        })
        .then(function (body) {
          self._renewing = false;
          if (!body || !sessionIdOf(body.client_secret)) throw new Error("session-url gave no client_secret");
          self.setAttribute("client-secret", body.client_secret);
        })
        .catch(function () {
          self._renewing = false;
          if (expired) self._emit("codetether:session-expired", {});
          clearTimeout(self._timer);
          self._timer = setTimeout(function () {
            self._renew(expired);
          }, RETRY_MS);
        });
    }
  }

  window.customElements.define("codetether-tasks", CodetetherTasks);
})();
