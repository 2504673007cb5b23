/*
 * The frame page of <codetether-tasks> (GET /embed/v1/frame/<session id>).
 *
 * Waits for the element's "codetether:init" message (from a registered origin of the partner, sent
 * by the parent window), then uses its client secret as the bearer token of the REST task routes:
 * lists the end user's tasks, creates tasks from the form, follows each unfinished task's event
 * stream (SSE read with fetch, since EventSource cannot send an Authorization header) and answers
 * questions and approvals with POST /v1/automation/tasks/{id}/input. It tells the parent what
 * happens with postMessage addressed to the parent's origin only.
 */
(function () {
  "use strict";

  var body = document.body;
  var API = body.getAttribute("data-api") || "";
  var ORIGINS = JSON.parse(body.getAttribute("data-origins") || "[]");
  var THEME = ["accent", "font", "background", "text", "muted", "border", "radius", "danger"];
  var TERMINAL = { completed: true, failed: true, cancelled: true };
  var RECONNECT_MS = 2000;
  // A browser opens about six connections per origin: a few streams, the rest of the unfinished
  // tasks polled, so the form and the answers always get a connection.
  var MAX_STREAMS = 3;
  var POLL_MS = 5000;

  var parentOrigin = null;
  var secret = null;
  var expired = false;
  var tasks = {}; // task_id -> {task, el, streaming, seq, since}
  var announced = {};
  var openStreams = 0;
  var pollTimer = null;

  var form = document.getElementById("new-task");
  var list = document.getElementById("tasks");
  var empty = document.getElementById("empty");
  var connection = document.getElementById("connection");
  var formError = document.getElementById("form-error");

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || ORIGINS.indexOf(event.origin) < 0) return;
    var data = event.data;
    if (!data || data.type !== "codetether:init" || typeof data.client_secret !== "string") return;
    parentOrigin = event.origin;
    var first = secret === null;
    secret = data.client_secret;
    expired = false;
    applyTheme(data.theme || {});
    formError.textContent = "";
    checkSession().then(function (ok) {
      if (!ok) return;
      form.querySelector("button").disabled = false;
      if (first) loadTasks();
      else resumeStreams();
    });
  });

  function post(type, detail) {
    if (parentOrigin) window.parent.postMessage({ type: type, detail: detail }, parentOrigin);
  }

  function applyTheme(theme) {
    THEME.forEach(function (name) {
      var value = theme[name];
      if (typeof value === "string" && value.length <= 200) {
        document.documentElement.style.setProperty("--ct-" + name, value);
      }
    });
  }

  function sessionLost() {
    if (expired) return;
    expired = true;
    connection.textContent = "Session expired: renewing…";
    form.querySelector("button").disabled = true;
    post("codetether:session-expired", {});
  }

  function call(path, options) {
    options = options || {};
    var headers = Object.assign({ Authorization: "Bearer " + secret }, options.headers || {});
    return fetch(API + path, Object.assign({}, options, { headers: headers, credentials: "omit" })).then(function (r) {
      if (r.status === 401) {
        sessionLost();
        throw new Error("Your session expired; it is being renewed. Try again in a moment.");
      }
      return r;
    });
  }

  function checkSession() {
    return call("/embed/v1/session")
      .then(function (r) {
        if (!r.ok) throw new Error("session " + r.status);
        return r.json();
      })
      .then(function (info) {
        connection.textContent = "";
        post("codetether:session", { expires_at: info.expires_at, end_user_id: info.end_user_id });
        return true;
      })
      .catch(function () {
        return false;
      });
  }

  function loadTasks() {
    call("/v1/automation/tasks?limit=20")
      .then(function (r) {
        if (!r.ok) throw new Error("list " + r.status);
        // Events older than this answer are history: replayed, they update the card but are not announced.
        var since = Date.parse(r.headers.get("Date") || "") || Date.now();
        return r.json().then(function (page) {
          page.data.slice().reverse().forEach(function (task) {
            track(task, since);
          });
          showEmpty();
        });
      })
      .catch(function (err) {
        if (!expired) connection.textContent = "Could not load your tasks (" + err.message + ").";
      });
  }

  function showEmpty() {
    empty.hidden = Object.keys(tasks).length > 0;
  }

  function track(task, since) {
    var entry = tasks[task.task_id];
    if (!entry) {
      entry = tasks[task.task_id] = { task: task, el: document.createElement("li"), streaming: false, seq: 0, since: since };
      entry.el.className = "task";
      entry.el.setAttribute("data-task-id", task.task_id);
      list.insertBefore(entry.el, list.firstChild);
    }
    var before = entry.task.status;
    entry.task = task;
    render(entry);
    if (task.status === "needs_input" && task.required_action) announceInput(task);
    if (!TERMINAL[before] && TERMINAL[task.status]) announceEnd(task);
    if (!TERMINAL[task.status]) follow(entry);
    return entry;
  }

  function resumeStreams() {
    Object.keys(tasks).forEach(function (id) {
      var entry = tasks[id];
      if (!TERMINAL[entry.task.status]) follow(entry);
    });
  }

  // ---- live progress: the task's SSE stream, read with fetch ----------------------------------

  function follow(entry) {
    if (entry.streaming || expired || TERMINAL[entry.task.status]) return;
    if (openStreams >= MAX_STREAMS) {
      schedulePoll();
      return;
    }
    entry.streaming = true;
    openStreams += 1;
    var id = entry.task.task_id;
    call("/v1/automation/tasks/" + encodeURIComponent(id) + "/events?after=" + entry.seq, {
      headers: { Accept: "text/event-stream" }
    })
      .then(function (r) {
        if (r.status === 204 || !r.ok || !r.body) return;
        return read(r.body.getReader(), entry);
      })
      .catch(function () {})
      .then(function () {
        entry.streaming = false;
        openStreams -= 1;
        if (!TERMINAL[entry.task.status] && !expired) {
          setTimeout(function () {
            follow(entry);
          }, RECONNECT_MS);
        } else {
          waiting().slice(0, 1).forEach(follow);
        }
      });
  }

  function waiting() {
    return Object.keys(tasks)
      .map(function (id) {
        return tasks[id];
      })
      .filter(function (entry) {
        return !entry.streaming && !TERMINAL[entry.task.status];
      });
  }

  function schedulePoll() {
    if (pollTimer === null) pollTimer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    pollTimer = null;
    if (expired) return;
    var entries = waiting();
    Promise.all(
      entries.map(function (entry) {
        return call("/v1/automation/tasks/" + encodeURIComponent(entry.task.task_id))
          .then(function (r) {
            return r.ok ? r.json() : null;
          })
          .then(function (task) {
            if (task) track(task, entry.since);
          })
          .catch(function () {});
      })
    ).then(function () {
      if (waiting().length) schedulePoll();
    });
  }

  function read(reader, entry) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          onBlock(buffer.slice(0, at), entry);
          buffer = buffer.slice(at + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function onBlock(block, entry) {
    var id = null;
    var data = [];
    block.split("\n").forEach(function (line) {
      if (line.indexOf("id:") === 0) id = line.slice(3).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (!data.length) return;
    var payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch (e) {
      return;
    }
    if (id !== null && /^\d+$/.test(id)) entry.seq = Math.max(entry.seq, parseInt(id, 10));
    if (payload.data && payload.data.task_id === entry.task.task_id) {
      entry.task = payload.data;
      render(entry);
    }
    var fresh = !entry.since || Date.parse(payload.created_at) >= entry.since;
    if (!fresh) return;
    if (payload.event === "task.needs_input" && entry.task.status === "needs_input") announceInput(entry.task);
    else if (TERMINAL[String(payload.event).slice(5)]) announceEnd(entry.task);
  }

  function announceEnd(task) {
    var type = task.status === "completed" ? "codetether:completed" : "codetether:failed";
    once("end:" + task.task_id + ":" + task.run_id, type, summary(task));
  }

  function summary(task) {
    return { task_id: task.task_id, status: task.status, title: task.title, result: task.result, error: task.error };
  }

  function once(key, type, detail) {
    if (announced[key]) return;
    announced[key] = true;
    post(type, detail);
  }

  function announceInput(task) {
    var action = task.required_action;
    once("input:" + action.id, "codetether:needs-input", {
      task_id: task.task_id,
      required_action: { id: action.id, kind: action.kind, prompt: action.prompt, options: action.options }
    });
  }

  // ---- rendering ------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function render(entry) {
    var task = entry.task;
    var li = entry.el;
    li.setAttribute("data-status", task.status);
    li.textContent = "";
    var head = el("div", { class: "head" });
    head.appendChild(el("span", { class: "title" }, task.title));
    head.appendChild(el("span", { class: "status status-" + task.status }, task.status.replace("_", " ")));
    li.appendChild(head);
    if (task.progress && !TERMINAL[task.status]) {
      var p = el("div", { class: "progress" }, task.progress.message);
      if (typeof task.progress.percent === "number") {
        var bar = el("progress", { max: "100", value: String(task.progress.percent) });
        p.appendChild(bar);
      }
      li.appendChild(p);
    }
    if (task.status === "needs_input" && task.required_action) {
      // Kept across updates while the same question waits, so an answer being typed survives them.
      if (!entry.answer || entry.answerFor !== task.required_action.id) {
        entry.answer = answerForm(task);
        entry.answerFor = task.required_action.id;
      }
      li.appendChild(entry.answer);
    } else {
      entry.answer = null;
      entry.answerFor = null;
    }
    if (task.status === "completed") li.appendChild(el("p", { class: "result" }, task.result_summary || task.result || "Done."));
    if (task.error) li.appendChild(el("p", { class: "error" }, task.error.message || task.error.code));
  }

  function answerForm(task) {
    var action = task.required_action;
    var box = el("form", { class: "answer", "aria-label": "Answer" });
    box.appendChild(el("p", { class: "question" }, action.prompt));
    var error = el("p", { class: "error", role: "alert" });
    function send(fields, buttons) {
      buttons.forEach(function (b) {
        b.disabled = true;
      });
      error.textContent = "";
      call("/v1/automation/tasks/" + encodeURIComponent(task.task_id) + "/input", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ required_action_id: action.id }, fields))
      })
        .then(function (r) {
          return r.json().then(function (out) {
            if (!r.ok) throw new Error(out.detail || out.title || "refused");
            track(out, 0);
          });
        })
        .catch(function (err) {
          error.textContent = err.message;
          buttons.forEach(function (b) {
            b.disabled = false;
          });
        });
    }
    var kind = action.kind;
    if (kind === "approval" || kind === "budget") {
      if (action.artifact && action.artifact.content) box.appendChild(el("pre", { class: "artifact" }, action.artifact.content));
      var reason = el("textarea", { rows: "2", "aria-label": "Reason (optional)", placeholder: "Reason (optional)" });
      var approve = el("button", { type: "button", class: "primary" }, "Approve");
      var reject = el("button", { type: "button" }, "Reject");
      [approve, reject].forEach(function (b) {
        b.addEventListener("click", function () {
          var fields = { decision: b === approve ? "approve" : "reject" };
          if (reason.value.trim()) fields.message = reason.value;
          send(fields, [approve, reject]);
        });
      });
      box.appendChild(reason);
      box.appendChild(approve);
      box.appendChild(reject);
    } else if (action.options && action.options.length) {
      var buttons = [];
      action.options.forEach(function (option) {
        var b = el("button", { type: "button", class: "option" }, option);
        b.addEventListener("click", function () {
          send({ choice: option }, buttons);
        });
        buttons.push(b);
        box.appendChild(b);
      });
    } else {
      var id = "answer-" + task.task_id;
      box.appendChild(el("label", { for: id }, "Your answer"));
      var text = el("textarea", { id: id, rows: "2", required: "" });
      var submit = el("button", { type: "submit", class: "primary" }, "Send answer");
      box.appendChild(text);
      box.appendChild(submit);
      box.addEventListener("submit", function (e) {
        e.preventDefault();
        if (text.value.trim()) send({ message: text.value }, [submit]);
      });
    }
    box.appendChild(error);
    return box;
  }

  // ---- the new-task form ----------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!secret || expired) return;
    var prompt = form.prompt.value.trim();
    if (!prompt) {
      formError.textContent = "Say what should be done.";
      return;
    }
    var title = form.title.value.trim() || prompt.split("\n")[0].slice(0, 80);
    var payload = { title: title, description: prompt, agent_type: form.agent_type.value };
    if (form.model.value) payload.model = form.model.value;
    var button = form.querySelector("button");
    button.disabled = true;
    formError.textContent = "";
    call("/v1/automation/tasks", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload)
    })
      .then(function (r) {
        return r.json().then(function (out) {
          if (!r.ok) throw new Error(out.detail || out.title || "refused");
          form.prompt.value = "";
          form.title.value = "";
          post("codetether:task-created", { task_id: out.task_id, status: out.status, title: out.title });
          track(out, 0);
          showEmpty();
        });
      })
      .catch(function (err) {
        formError.textContent = err.message;
      })
      .then(function () {
        button.disabled = expired;
      });
  });
})();
