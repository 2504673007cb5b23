// Small progressive enhancements for the console. Every page works without this file.
"use strict";

function onReady(fn) {
  if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
}

// Copy buttons next to secrets shown once.
function wireCopyButtons() {
  document.querySelectorAll("button.copy[data-copy]").forEach((btn) => {
    btn.addEventListener("click", async () => {
      const el = document.querySelector(btn.dataset.copy);
      if (!el) return;
      try {
        await navigator.clipboard.writeText(el.textContent.trim());
        btn.textContent = "Copied";
      } catch (_err) {
        const range = document.createRange();
        range.selectNodeContents(el);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        btn.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { btn.textContent = "Copy"; }, 2000);
    });
  });
}

// Forms that destroy something ask first.
function wireConfirms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });
}

// The task page follows the task's event stream: new events are appended to the log and the
// status panel is fetched again (server-rendered), so a question shows up without a reload.
function followTask() {
  const panel = document.getElementById("task-panel");
  if (!panel || !window.EventSource) return;
  const taskId = panel.dataset.task;
  const list = document.getElementById("events");
  const live = document.getElementById("live");
  let after = panel.dataset.lastSeq || "0";
  if (panel.dataset.terminal === "true") return;
  const source = new EventSource(`/console/tasks/${encodeURIComponent(taskId)}/stream?after=${after}`);
  let refreshing = null;
  let again = false;
  const refresh = () => {
    // One fetch at a time; an event that arrives meanwhile triggers one more after it, so the
    // panel always ends up showing the state after the last event.
    if (refreshing) { again = true; return; }
    refreshing = fetch(`/console/tasks/${encodeURIComponent(taskId)}/panel`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        // Keep an answer being typed: only swap the panel when the box is not in use.
        const typing = document.activeElement && panel.contains(document.activeElement) &&
          document.activeElement.value;
        if (html !== null && !typing) { panel.innerHTML = html; wireConfirms(); }
      })
      .finally(() => {
        refreshing = null;
        if (again) { again = false; refresh(); }
      });
  };
  source.onopen = () => { if (live) live.hidden = false; };
  const onEvent = (ev) => {
    const seq = Number(ev.lastEventId || 0);
    if (list && !list.querySelector(`li[data-seq="${seq}"]`)) {
      const empty = document.getElementById("no-events");
      if (empty) empty.remove();
      const li = document.createElement("li");
      li.dataset.seq = String(seq);
      li.className = "new";
      let when = "";
      let message = null;
      try {
        const body = JSON.parse(ev.data);
        when = (body.created_at || "").replace("T", " ").slice(0, 19) + " UTC";
        const progress = ev.type === "task.progress" && body.data ? body.data.progress : null;
        if (progress && typeof progress.message === "string") message = progress.message;
      } catch (_e) { /* keep empty */ }
      li.innerHTML = '<span class="seq"></span><span class="etype"></span><span class="muted small"></span>';
      li.children[0].textContent = `#${seq}`;
      li.children[1].textContent = ev.type;
      li.children[2].textContent = when;
      if (message) {
        const msg = document.createElement("span");
        msg.className = "emsg";
        msg.textContent = message;
        li.appendChild(msg);
      }
      list.appendChild(li);
      list.scrollTop = list.scrollHeight;
    }
    refresh();
    if (["task.completed", "task.failed", "task.cancelled"].includes(ev.type)) {
      source.close();
      if (live) live.hidden = true;
    }
  };
  ["task.created", "task.started", "task.progress", "task.needs_input", "task.completed", "task.failed",
    "task.cancelled"].forEach((t) => source.addEventListener(t, onEvent));
  source.onerror = () => { if (live) live.hidden = true; };
}

// "All on this page" ticks every task's box for Cancel selected.
function wireSelectAll() {
  const all = document.getElementById("select-all");
  if (!all) return;
  const boxes = () => document.querySelectorAll('#task-table input[name="task_ids"]');
  all.addEventListener("change", () => { boxes().forEach((b) => { b.checked = all.checked; }); });
  boxes().forEach((b) => b.addEventListener("change", () => {
    all.checked = Array.from(boxes()).every((x) => x.checked);
  }));
}

onReady(() => {
  wireSelectAll();
  wireCopyButtons();
  wireConfirms();
  followTask();
});
