// The page's script: it follows the live stream (/view/ID/events) and puts each fragment the server
// sends into its element, sends the form without leaving the page, and makes a reply one click
// or key away. All HTML it inserts was made and escaped by the server; text it makes itself
// goes in as text.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const form = $("send");
  if (!status || !form) return; // the sign-in and message pages have no script to run
  const room = document.body.dataset.room;
  const base = document.body.dataset.base; // the page's own address, /view/ID/
  const from = $("from"), to = $("to"), body = $("body"), replyTo = $("reply_to");
  const result = $("send-result"), button = $("send-button"), threads = $("threads");
  const seen = new Set();

  // Message and lease times arrive in UTC; show them in the reader's own time.
  const localTimes = (root) => {
    for (const t of root.querySelectorAll("time[datetime]")) {
      if (t.closest(".seen")) continue; // ages ("5s ago") stay as the server wrote them
      const d = new Date(t.dateTime);
      if (!Number.isNaN(d.getTime())) t.textContent = d.toLocaleTimeString();
    }
  };
  const markNew = (first) => {
    for (const a of threads.querySelectorAll("article.message")) {
      if (!seen.has(a.dataset.id)) {
        seen.add(a.dataset.id);
        if (!first) a.classList.add("new");
      }
    }
  };
  const ensureOption = (name) => {
    if (name && ![...to.options].some((o) => o.value === name)) {
      const o = document.createElement("option");
      o.value = name;
      o.textContent = name;
      to.append(o);
    }
  };

  const apply = (parts) => {
    for (const [id, html] of Object.entries(parts)) {
      const el = $(id);
      if (!el) continue;
      if (el === to) {
        const chosen = to.value;
        to.innerHTML = html;
        ensureOption(chosen);
        to.value = chosen;
        continue;
      }
      // Keep the keyboard where it was: a focused reply button is found again by its id.
      const active = document.activeElement;
      const focused = active && el.contains(active) ? active.dataset.reply : undefined;
      el.innerHTML = html;
      localTimes(el);
      if (focused) el.querySelector(`button.reply[data-reply="${CSS.escape(focused)}"]`)?.focus();
      if (el === threads) markNew(false);
    }
  };

  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  let stream;
  const follow = () => {
    stream = new EventSource(`${base}events?room=${encodeURIComponent(room)}`);
    stream.addEventListener("open", () => setStatus("live", "live"));
    stream.addEventListener("board", (e) => apply(JSON.parse(e.data)));
    stream.addEventListener("signed-out", () => {
      stream.close();
      location.reload();
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        // Refused (the server restarted, or this browser is no longer let in): try again
        // later; a reload shows why if it keeps failing.
        setStatus("offline", "offline: retrying (reload if it lasts)");
        setTimeout(follow, 5000);
      } else {
        setStatus("reconnecting", "reconnecting…");
      }
    });
  };

  const setReply = (id, who) => {
    replyTo.value = id;
    ensureOption(who);
    to.value = who;
    $("replying-id").textContent = id;
    $("replying-link").href = `#m-${id}`;
    $("replying").hidden = false;
    body.focus();
  };
  const clearReply = () => {
    replyTo.value = "";
    $("replying").hidden = true;
  };
  threads.addEventListener("click", (e) => {
    const b = e.target.closest("button.reply");
    if (b) setReply(b.dataset.reply, b.dataset.to);
  });
  $("cancel-reply").addEventListener("click", () => {
    clearReply();
    body.focus();
  });
  body.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.key === "Escape" && replyTo.value) {
      clearReply();
    }
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!body.value.trim()) {
      result.textContent = "write a message first";
      body.focus();
      return;
    }
    button.disabled = true;
    result.textContent = "sending…";
    try {
      const r = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "x-c2c-page": "1" },
        credentials: "same-origin",
      });
      const answer = await r.json().catch(() => ({ error: `the server answered ${r.status}` }));
      if (r.ok && answer.id !== undefined) {
        result.textContent = `sent #${answer.id}` + (answer.note ? ` (${answer.note})` : "");
        body.value = "";
        clearReply();
        if (!from.readOnly) localStorage.setItem("c2c-from", from.value);
      } else {
        result.textContent = `not sent: ${answer.error || r.status}`;
      }
    } catch (err) {
      result.textContent = `not sent: ${err.message} (is the server still running?)`;
    } finally {
      button.disabled = false;
      body.focus();
    }
  });

  if (!from.readOnly) {
    const saved = localStorage.getItem("c2c-from");
    if (saved) from.value = saved;
  }
  localTimes(document);
  markNew(true);
  follow();
})();
