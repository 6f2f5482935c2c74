// RoomScribe web UI: small vanilla JS over the JSON API. No build step.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty body */ }
  return {ok: res.ok, status: res.status, data};
}

function toast(text, kind) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.className = kind || "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
}

function banner(html) {
  const el = document.getElementById("banner");
  if (!el) return;
  el.innerHTML = html;
  el.hidden = !html;
}

// Live updates: one socket per page; reconnects with back-off (bounded at 30 s).
function live(onChange) {
  const status = document.getElementById("live-status");
  let delay = 1000;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/review`);
    ws.onopen = () => { delay = 1000; if (status) { status.textContent = "● live"; status.className = "live on"; } };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "item-changed" || msg.type === "resync") onChange(msg);
    };
    ws.onclose = () => {
      if (status) { status.textContent = "○ reconnecting"; status.className = "live off"; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
}

// ---- queue page
function initQueue() {
  const rows = document.getElementById("queue-rows");
  if (!rows) return;
  const refresh = async () => {
    const res = await fetch("/queue/rows" + location.search, {credentials: "same-origin"});
    if (res.ok) rows.innerHTML = await res.text();
  };
  document.querySelectorAll("#queue-filters select, #queue-filters input").forEach(
    (el) => el.addEventListener("change", () => document.getElementById("queue-filters").submit()));
  live(refresh);
}

// ---- rooms page
function initRooms() {
  const rows = document.getElementById("rooms-rows");
  if (!rows) return;
  setInterval(async () => {
    const res = await fetch(rows.dataset.poll, {credentials: "same-origin"});
    if (res.ok) rows.innerHTML = await res.text();
  }, 5000);
}

// ---- item page
function collectEdit(root) {
  const sections = {};
  root.querySelectorAll("textarea[data-section]").forEach((t) => {
    if (t.value !== t.defaultValue) sections[t.dataset.section] = t.value;
  });
  const orders = [];
  root.querySelectorAll("fieldset[data-order]").forEach((fs) => {
    const fields = {};
    fs.querySelectorAll("input[data-field]").forEach((i) => {
      if (i.value !== i.defaultValue) fields[i.dataset.field] = i.value;
    });
    const picked = fs.querySelector("input[type=radio]:checked");
    const wasPicked = fs.querySelector("input[type=radio][checked]");
    const decision = picked ? picked.value : "pending";
    if (Object.keys(fields).length || (picked && picked !== wasPicked)) {
      orders.push({id: fs.dataset.order, decision, fields});
    }
  });
  return {sections, orders};
}

// After a save the page shows what the server stored, and later edits diff against it.
function markSaved(root, item) {
  root.querySelectorAll("textarea, input[data-field]").forEach((el) => { el.defaultValue = el.value; });
  root.querySelectorAll("input[type=radio]").forEach((el) => {
    el.defaultChecked = el.checked;
    if (el.checked) el.setAttribute("checked", ""); else el.removeAttribute("checked");
  });
  const label = document.getElementById("version-label");
  if (label) label.textContent = item.version;
  for (const order of item.document.orders) {
    const fs = root.querySelector(`fieldset[data-order="${order.id}"]`);
    if (!fs) continue;
    fs.className = `order decision-${order.decision}`;
    const badge = fs.querySelector("legend .badge");
    if (badge) badge.textContent = order.decision;
  }
}

function initItem() {
  const head = document.getElementById("item");
  if (!head) return;
  const id = head.dataset.item;
  const base = `/api/v1/review/items/${id}`;
  let version = Number(head.dataset.version);
  let dirty = false;
  const form = document.getElementById("note");
  form.addEventListener("input", () => { dirty = true; });

  const player = document.getElementById("player");
  document.querySelectorAll("button.ev").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll(".seg.hit").forEach((s) => s.classList.remove("hit"));
    (b.dataset.segments || "").split(",").filter(Boolean).forEach((sid, i) => {
      const seg = document.getElementById(`seg-${sid}`);
      if (seg) { seg.classList.add("hit"); if (i === 0) seg.scrollIntoView({block: "center", behavior: "smooth"}); }
    });
    const start = Math.max(0, Number(b.dataset.start) - 0.25);
    const end = Number(b.dataset.end) + 0.25;
    player.src = `${base}/audio.wav?start=${start.toFixed(2)}&end=${end.toFixed(2)}`;
    player.play().catch(() => {});
  }));

  async function save() {
    const edit = collectEdit(form);
    const res = await api("PUT", `${base}/note`, {base_version: version, ...edit});
    if (res.ok) {
      version = res.data.version;
      dirty = false;
      markSaved(form, res.data);
      toast(`Saved as version ${version}`);
      return true;
    }
    if (res.status === 409 && res.data && res.data.error === "version-conflict") {
      // Keep what was typed: nothing is reloaded over it.
      banner(`${res.data.detail}. Your text is still here: copy what you need, then
        <a href="" onclick="location.reload();return false">load version ${res.data.current_version}</a>.`);
      return false;
    }
    toast((res.data && res.data.detail) || `Save failed (${res.status})`, "bad");
    return false;
  }

  const saveButton = document.getElementById("save");
  if (saveButton) saveButton.addEventListener("click", save);

  document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", async () => {
    const action = b.dataset.action;
    let body;
    if (action === "return") {
      const comment = prompt("What should the partner change?");
      if (!comment) return;
      body = {comment};
    }
    if (dirty && (action === "send" || action === "sign")) {
      if (!(await save())) return;
    }
    const res = await api("POST", `${base}/${action}`, body);
    if (res.ok) {
      dirty = false;
      location.href = (action === "sign" || action === "send" || action === "return") ? "/queue" : location.href;
    } else {
      toast((res.data && res.data.detail) || `${action} failed (${res.status})`, "bad");
    }
  }));

  window.addEventListener("beforeunload", (e) => { if (dirty) { e.preventDefault(); } });

  live((msg) => {
    if (msg.type === "resync" || (msg.item_id === id && msg.actor !== head.dataset.me)) {
      if (!dirty) { location.reload(); return; }
      banner(`${msg.actor || "Someone"} changed this draft (${(msg.state || "").replace("_", " ")}, version ${msg.version}).
        Save to check for a conflict, or <a href="" onclick="location.reload();return false">reload</a>.`);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", async () => {
    await api("POST", "/api/v1/auth/logout");
    location.href = "/login";
  });
  initQueue();
  initRooms();
  initItem();
});
