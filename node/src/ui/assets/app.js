// Catchment's web UI: the only script. It refreshes the open feed when a change arrives,
// shows notifications as they come, copies invites, and asks before a destructive button.
"use strict";

(function () {
  const topic = document.body.dataset.topic || null;

  // Confirm before buttons that cannot be undone.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
    const copy = event.target.closest("button[data-copy]");
    if (copy) {
      const field = document.querySelector(copy.dataset.copy);
      if (field) {
        field.select();
        if (navigator.clipboard) {
          navigator.clipboard.writeText(field.value).then(() => { copy.textContent = "Copied"; }, () => {});
        }
      }
    }
  });

  // Parts of the page that re-render themselves when the topic changes.
  const live = Array.from(document.querySelectorAll("[data-live]"));
  let timer = null;
  let busy = false;

  async function refresh() {
    for (const part of live) {
      // Leave a part alone while someone is using a control inside it.
      if (part.contains(document.activeElement) && document.activeElement !== document.body) {
        schedule(1500);
        continue;
      }
      const before = new Set(Array.from(part.querySelectorAll("[data-id]")).map((e) => e.dataset.id));
      try {
        const response = await fetch(part.dataset.live, { credentials: "same-origin" });
        if (!response.ok) continue;
        part.innerHTML = await response.text();
        for (const element of part.querySelectorAll("[data-id]")) {
          if (!before.has(element.dataset.id)) element.classList.add("fresh");
        }
      } catch (_) {
        // The node may be restarting; the next event tries again.
      }
    }
  }

  function schedule(delay) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(async () => {
      timer = null;
      if (busy) return schedule(500);
      busy = true;
      try { await refresh(); } finally { busy = false; }
    }, delay);
  }

  function toast(text, link) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const div = document.createElement("div");
    div.className = "toast";
    const a = document.createElement("a");
    a.href = link;
    a.textContent = text;
    div.appendChild(a);
    box.appendChild(div);
    setTimeout(() => div.remove(), 8000);
  }

  if (!window.EventSource) return;
  const source = new EventSource("/events");
  source.addEventListener("change", (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    if (live.length && data.topic === topic) schedule(250);
  });
  source.addEventListener("notice", (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    toast(data.text, data.link);
    const count = document.getElementById("notice-count");
    if (count) {
      count.textContent = String((parseInt(count.textContent, 10) || 0) + 1);
      count.hidden = false;
    }
  });
  document.body.dataset.live = "connected";
  source.addEventListener("open", () => { document.body.dataset.stream = "open"; });
})();
