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
  if (res.status === 401 && !url.startsWith("/api/v1/auth/")) sessionEnded();
  return {ok: res.ok, status: res.status, data};
}

// The session ended (expired, logged out elsewhere, revoked): say so and offer to log in
// again, coming back here; what is on the page (typed text included) is left alone.
function sessionEnded() {
  const el = document.getElementById("session-ended");
  if (!el || !el.hidden) return;
  el.querySelector("a").href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  el.hidden = false;
}

// Run one request from a button with the button disabled meanwhile (a second click does
// nothing while the first is on its way).
async function whileDisabled(button, run) {
  if (button.disabled) return;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try { await run(); } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// A polled fragment: its HTML, or null when the session has ended (the server then
// answers with the login page, which must never be pasted into the page).
async function fragment(url) {
  const res = await fetch(url, {credentials: "same-origin"});
  if (res.status === 401 || (res.redirected && new URL(res.url).pathname === "/login")) {
    sessionEnded();
    return null;
  }
  return res.ok ? res.text() : null;
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
    ws.onclose = (ev) => {
      if (ev.code === 4401) {  // the session is gone: no point reconnecting
        if (status) { status.textContent = "○ logged out"; status.className = "live off"; }
        sessionEnded();
        return;
      }
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
    const html = await fragment("/queue/rows" + location.search);
    if (html !== null) rows.innerHTML = html;
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
    const html = await fragment(rows.dataset.poll);
    if (html !== null) rows.innerHTML = html;
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
  const instructions = [];
  root.querySelectorAll("fieldset[data-instruction]").forEach((fs) => {
    const id = fs.dataset.instruction || null;
    const text = fs.querySelector("textarea");
    const kind = fs.querySelector("select[data-instruction-kind]");
    if (isRemoved(fs)) { if (id) instructions.push({id, remove: true}); return; }
    if (!id) { instructions.push({id, fields: {kind: kind.value, text: text.value}}); return; }
    const fields = {};
    if (text.value !== text.defaultValue) fields.text = text.value;
    if (kind && kind.value !== fs.dataset.kind) fields.kind = kind.value;
    if (Object.keys(fields).length) instructions.push({id, fields});
  });
  return {sections, orders, instructions};
}

const isRemoved = (fs) => fs.querySelector("button.remove")?.getAttribute("aria-pressed") === "true";

// An instruction whose order is rejected (as picked on the page now) is not signed.
function markLeftOut(root) {
  const rejected = new Set([...root.querySelectorAll("fieldset[data-order]")]
    .filter((fs) => fs.querySelector("input[type=radio]:checked")?.value === "rejected")
    .map((fs) => fs.dataset.order));
  root.querySelectorAll("fieldset[data-instruction]").forEach((fs) => {
    const out = rejected.has(fs.dataset.orderRef);
    fs.classList.toggle("left-out", out);
    fs.querySelector(".left-out-note").hidden = !out;
  });
}

function kindLabel(kind) {
  const option = document.querySelector(`#new-instruction-kind option[value="${CSS.escape(kind)}"]`);
  return option ? option.textContent : kind;
}

// The instruction rows after a save: removed ones go, added ones get their ids.
function syncInstructions(root, saved) {
  const rows = [...root.querySelectorAll("fieldset[data-instruction]")];
  const known = new Set(rows.map((fs) => fs.dataset.instruction).filter(Boolean));
  const added = saved.filter((n) => !known.has(n.id));
  rows.filter((fs) => !fs.dataset.instruction).forEach((fs, i) => {
    fs.dataset.instruction = added[i] ? added[i].id : "";
  });
  const byId = new Map(saved.map((n) => [n.id, n]));
  rows.forEach((fs) => {
    const n = byId.get(fs.dataset.instruction);
    if (!n) { fs.remove(); return; }
    const text = fs.querySelector("textarea");
    text.defaultValue = n.text;
    text.value = n.text;
    fs.dataset.kind = n.kind;
    const kind = fs.querySelector("select[data-instruction-kind]");
    if (kind) kind.value = n.kind;
    fs.querySelector(".kind-label").textContent = kindLabel(n.kind);
  });
}

function toggleRemove(fs) {
  if (!fs.dataset.instruction) { fs.remove(); return; }  // added and not saved yet
  const removed = !isRemoved(fs);
  fs.querySelector("button.remove").setAttribute("aria-pressed", String(removed));
  fs.classList.toggle("removed", removed);
  fs.querySelector(".removed-note").hidden = !removed;
}

function addInstruction(root) {
  const text = document.getElementById("new-instruction-text");
  const kind = document.getElementById("new-instruction-kind");
  if (!text.value.trim()) { toast("Type the instruction's text first", "bad"); text.focus(); return; }
  const fs = document.getElementById("instruction-template").content.firstElementChild.cloneNode(true);
  fs.dataset.kind = kind.value;
  fs.querySelector("select[data-instruction-kind]").value = kind.value;
  fs.querySelector(".kind-label").textContent = kindLabel(kind.value);
  fs.querySelector("textarea").value = text.value.trim();
  document.getElementById("instructions").append(fs);
  document.getElementById("no-instructions")?.remove();
  text.value = "";
  fs.querySelector("textarea").focus();
  root.dispatchEvent(new Event("input"));  // unsaved now
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
  syncInstructions(root, item.document.instructions || []);
  markLeftOut(root);
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
  form.addEventListener("change", (e) => {
    if (e.target.matches("select[data-instruction-kind]")) {
      e.target.closest("fieldset").querySelector(".kind-label").textContent = kindLabel(e.target.value);
    }
    markLeftOut(form);
  });
  form.addEventListener("click", (e) => {
    const remove = e.target.closest("fieldset[data-instruction] button.remove");
    if (remove) { toggleRemove(remove.closest("fieldset")); dirty = true; }
  });
  const addButton = document.getElementById("add-instruction");
  if (addButton) addButton.addEventListener("click", () => addInstruction(form));
  document.getElementById("new-instruction-text")?.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); addInstruction(form); }
  });

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

  // One save at a time: a second click while one runs waits for it (a double-click is
  // one version, never a conflict with itself).
  let saving = null;
  async function save() {
    if (!saving) saving = saveNow().finally(() => { saving = null; });
    return saving;
  }

  async function saveNow() {
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
  if (saveButton) saveButton.addEventListener("click", () => whileDisabled(saveButton, save));

  document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click",
    () => whileDisabled(b, () => act(b.dataset.action))));

  async function act(action) {
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
  }

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
    location.replace("/login");  // Back then asks the server again (no-store): no PHI
  });
  initQueue();
  initRooms();
  initItem();
});
