// RoomScribe web UI: small vanilla JS over the JSON API. No build step.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

async function api(method, url, body) {
  let res;
  try {
    res = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    return {ok: false, status: 0, data: {detail: "The server cannot be reached: check the network, then try again. Nothing was lost on this page."}};
  }
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty body */ }
  if (res.status === 401 && !url.startsWith("/api/v1/auth/")) sessionEnded();
  return {ok: res.ok, status: res.status, data};
}

// What went wrong, in words a clinician can act on.
function problem(res, what) {
  if (res.status === 401) return `Your session has ended: log in again, then ${what} again. Your text is still here.`;
  if (res.status === 403) return (res.data && res.data.detail) || `You may not ${what} this note.`;
  if (res.status === 404) return "This note is no longer available to you.";
  if (res.status === 0) return res.data.detail;
  const detail = res.data && res.data.detail;
  if (detail) return detail.charAt(0).toUpperCase() + detail.slice(1) + ".";
  return `Could not ${what} (the server answered ${res.status}). Try again; nothing was lost on this page.`;
}

// ---- sessions: an ended session is said on the page, and a login dialog brings it back
// without leaving the page (typed text stays where it is).
const sessionListeners = [];

function sessionEnded() {
  const el = document.getElementById("session-ended");
  if (el && el.hidden) {
    el.querySelector("a").href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    el.hidden = false;
  }
  const dialog = document.getElementById("relogin");
  if (dialog && !dialog.open) {
    dialog.showModal();
    $("#relogin-password", dialog).focus();
  }
}

function initRelogin() {
  const dialog = document.getElementById("relogin");
  if (!dialog) return;
  const error = $("#relogin-error", dialog);
  $("#relogin-later", dialog).addEventListener("click", () => dialog.close());
  $("#relogin-form", dialog).addEventListener("submit", async (e) => {
    e.preventDefault();
    const username = $("#relogin-username", dialog).value;
    const res = await api("POST", "/api/v1/auth/login",
      {username, password: $("#relogin-password", dialog).value});
    if (!res.ok) {
      error.textContent = (res.data && res.data.detail) || "Could not log in.";
      error.hidden = false;
      return;
    }
    if (res.data.user.username !== document.body.dataset.me) {
      sessionStorage.clear();  // someone else: neither this page nor its unsaved text is theirs
      location.href = "/";
      return;
    }
    $('meta[name="csrf-token"]').content = res.data.csrf_token;
    $("#relogin-password", dialog).value = "";
    error.hidden = true;
    dialog.close();
    document.getElementById("session-ended").hidden = true;
    sessionListeners.forEach((f) => f());
    toast("Logged in again. Nothing on this page was lost.");
  });
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
  let res;
  try { res = await fetch(url, {credentials: "same-origin"}); } catch (_) { return null; }
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
  toast.timer = setTimeout(() => { el.hidden = true; }, kind === "bad" ? 9000 : 5000);
}

function banner(html, id = "banner") {
  const el = document.getElementById(id);
  if (!el) return;
  el.innerHTML = html;
  el.hidden = !html;
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

// Live updates: one socket per page; reconnects with back-off (bounded at 30 s), and
// again after a login in the dialog.
function live(onChange) {
  const status = document.getElementById("live-status");
  let delay = 1000;
  let stopped = false;
  function connect() {
    stopped = false;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/review`);
    ws.onopen = () => { delay = 1000; if (status) { status.textContent = "● live"; status.className = "live on"; } };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "item-changed" || msg.type === "resync") onChange(msg);
    };
    ws.onclose = (ev) => {
      if (ev.code === 4401) {  // the session is gone: reconnect only after a new login
        if (status) { status.textContent = "○ logged out"; status.className = "live off"; }
        stopped = true;
        sessionEnded();
        return;
      }
      if (status) { status.textContent = "○ reconnecting"; status.className = "live off"; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  sessionListeners.push(() => { if (stopped) { connect(); onChange({type: "resync"}); } });
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

// ---- rooms page: its rows and open alerts refresh every 5 s, filtered as the page is
function initRooms() {
  const rows = document.getElementById("rooms-rows");
  if (!rows) return;
  const polled = document.querySelectorAll("#rooms-rows[data-poll], #fleet-alerts[data-poll]");
  setInterval(() => polled.forEach(async (el) => {
    const html = await fragment(el.dataset.poll + location.search);
    if (html !== null) el.innerHTML = html;
  }), 5000);
  const form = document.getElementById("rooms-filters");
  if (form) {
    form.querySelectorAll("select, input[type=checkbox]").forEach(
      (el) => el.addEventListener("change", () => form.submit()));
  }
}

// ---- rooms page: a device's actions in a dialog (the rows refresh under it; it does not)
function configValue(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  if (/^-?\d+$/.test(t)) return Number.parseInt(t, 10);
  if (/^-?\d*\.\d+$/.test(t)) return Number.parseFloat(t);
  return t;
}

function initDeviceActions() {
  const dialog = document.getElementById("device-actions");
  const rows = document.getElementById("rooms-rows");
  if (!dialog || !rows) return;
  const result = $("#device-actions-result", dialog);
  const error = $("#device-actions-error", dialog);
  const codeShown = $("#device-code-shown", dialog);
  const confirmBox = $("#device-revoke-confirm", dialog);
  let device = null;
  const path = (what) => `/admin/rooms/devices/${encodeURIComponent(device.id)}/${what}`;
  const say = (text) => { result.textContent = text; result.hidden = false; error.hidden = true; };
  const fail = (res, what) => {
    error.textContent = res.status === 403 || res.status === 404
      ? ((res.data && res.data.detail) || `You may not ${what} this device.`) : problem(res, what);
    error.hidden = false;
    result.hidden = true;
  };
  const show = (state) => {
    device.state = state;
    $$("[data-field=state]", dialog).forEach((el) => { el.textContent = state; });
    const enrolled = !["revoked", "not-enrolled"].includes(state);
    $$("[data-when=enrolled]", dialog).forEach((el) => { el.hidden = !enrolled; });
  };

  rows.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-device-actions]");
    if (!button) return;
    device = {id: button.dataset.deviceActions, name: button.dataset.deviceName};
    $$("[data-field=name]", dialog).forEach((el) => { el.textContent = device.name; });
    $$("[data-field=id]", dialog).forEach((el) => { el.textContent = device.id; });
    [result, error, codeShown, confirmBox].forEach((el) => { el.hidden = true; });
    codeShown.textContent = "";
    $("#device-config", dialog).reset();
    show(button.dataset.deviceState);
    dialog.showModal();
  });
  $("#device-actions-close", dialog).addEventListener("click", () => dialog.close());
  // a one-time code is shown once, as text, and kept nowhere else; closing forgets it
  dialog.addEventListener("close", () => { codeShown.textContent = ""; codeShown.hidden = true; });

  $$("button[data-command]", dialog).forEach((button) => button.addEventListener("click", () =>
    whileDisabled(button, async () => {
      const action = button.dataset.command;
      const res = await api("POST", path("command"), {action});
      if (res.ok) say(`Sent "${action}" to ${device.name}.`); else fail(res, action);
    })));

  const diag = $("#device-diagnostics", dialog);
  diag.addEventListener("click", () => whileDisabled(diag, async () => {
    say(`Asking ${device.name} for its diagnostics…`);
    let res;
    try {
      res = await fetch(path("diagnostics"), {method: "POST", credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf()}});
    } catch (_) {
      fail({status: 0, data: {detail: "The server cannot be reached: check the network, then try again."}}, "ask for diagnostics");
      return;
    }
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch (_) { /* empty body */ }
      if (res.status === 401) sessionEnded();
      fail({status: res.status, data}, "ask for diagnostics from");
      return;
    }
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1]
      || `roomscribe-diagnostics-${device.id}.json`;
    const url = URL.createObjectURL(await res.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say(`Diagnostics of ${device.name} downloaded (${name}).`);
  }));

  const form = $("#device-config", dialog);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    whileDisabled($("button[type=submit]", form), async () => {
      const key = form.elements.key.value.trim();
      const res = await api("POST", path("config"),
        {changes: {[key]: configValue(form.elements.value.value)}});
      if (res.ok) {
        const applied = Object.entries(res.data.applied).map(([k, v]) => `${k} = ${v}`).join(", ");
        say(`${device.name} applied ${applied || "nothing"} (until the agent restarts).`);
      } else if (res.status === 422 && !(res.data && typeof res.data.detail === "string")) {
        fail({status: 0, data: {detail: "The server did not accept that setting: a name of up to 64 characters and a value of up to 500."}}, "change");
      } else {
        fail(res, "change the setting of");  // a 422 carries the agent's reason
      }
    });
  });

  const code = $("#device-code", dialog);
  code.addEventListener("click", () => whileDisabled(code, async () => {
    const res = await api("POST", path("enrolment-code"));
    if (!res.ok) { fail(res, "issue a code for"); return; }
    codeShown.textContent = `One-time enrolment code for ${device.name}: ${res.data.code} ` +
      `(valid until ${new Date(res.data.expires_at).toLocaleString()}; shown once: any earlier code no longer works).`;
    codeShown.hidden = false;
    error.hidden = true;
  }));

  $("#device-revoke", dialog).addEventListener("click", () => {
    confirmBox.hidden = false;
    $("#device-revoke-no", dialog).focus();
  });
  $("#device-revoke-no", dialog).addEventListener("click", () => { confirmBox.hidden = true; });
  const yes = $("#device-revoke-yes", dialog);
  yes.addEventListener("click", () => whileDisabled(yes, async () => {
    const res = await api("POST", path("revoke"));
    confirmBox.hidden = true;
    if (!res.ok) { fail(res, "revoke"); return; }
    show("revoked");
    say(`${device.name} is revoked: it needs a new enrolment code to come back.`);
    const html = await fragment("/admin/rooms/rows" + location.search);
    if (html !== null) rows.innerHTML = html;
  }));
}

// ---- pools page: add and remove members through the admin API (which audits them)
function initPools() {
  const error = document.getElementById("pools-error");
  if (!error) return;
  const fail = (res, what) => { error.textContent = problem(res, what); error.hidden = false; };
  $$("form[data-add-member]").forEach((form) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const pool = form.closest("[data-pool]").dataset.pool;
    const button = $("button[type=submit]", form);
    await whileDisabled(button, async () => {
      const res = await api("POST", `/api/v1/admin/pools/${encodeURIComponent(pool)}/members`,
        {username: form.elements.username.value});
      if (res.ok) location.reload(); else fail(res, "add the member");
    });
  }));
  $$("button[data-remove-member]").forEach((button) => button.addEventListener("click", async () => {
    const pool = button.closest("[data-pool]").dataset.pool;
    const user = button.dataset.removeMember;
    await whileDisabled(button, async () => {
      const res = await api("DELETE",
        `/api/v1/admin/pools/${encodeURIComponent(pool)}/members/${encodeURIComponent(user)}`);
      if (res.ok) location.reload(); else fail(res, "remove the member");
    });
  }));
}

// ---- users page: create, change a role, disable / enable, reset a password (admin API)
function initUsers() {
  const error = document.getElementById("users-error");
  if (!error) return;
  const shown = document.getElementById("users-password");
  const fail = (res, what) => { error.textContent = problem(res, what); error.hidden = false; };
  // a one-time password is shown once, as text, and kept nowhere (not even sessionStorage)
  const tell = (username, password) => {
    shown.textContent = `One-time password for ${username}: ${password} (shown once; they choose their own at first login).`;
    shown.hidden = false;
  };
  const form = document.getElementById("user-create");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await whileDisabled($("button[type=submit]", form), async () => {
      const f = form.elements;
      const res = await api("POST", "/api/v1/admin/users", {username: f.username.value,
        display_name: f.display_name.value, clinic_id: f.clinic_id.value, role: f.role.value});
      if (!res.ok) { fail(res, "create the account"); return; }
      error.hidden = true;
      form.reset();
      tell(res.data.username, res.data.password);
      shown.append(" Reload the page to see the account in the list.");
    });
  });
  $$("tr[data-user]").forEach((row) => {
    const username = row.dataset.user;
    const path = `/api/v1/admin/users/${encodeURIComponent(username)}`;
    $$("select[data-role-clinic]", row).forEach((select) => select.addEventListener("change", async () => {
      const res = await api("POST", "/api/v1/admin/memberships",
        {username, clinic_id: select.dataset.roleClinic, role: select.value});
      if (res.ok) toast(`${username} is now ${select.value} in ${select.dataset.roleClinic}.`);
      else fail(res, "change the role");
    }));
    $$("button[data-user-action]", row).forEach((button) => button.addEventListener("click", async () => {
      const action = button.dataset.userAction;
      await whileDisabled(button, async () => {
        const res = await api("POST", `${path}/${action}`);
        if (!res.ok) { fail(res, `${action === "password" ? "reset the password of" : action} ${username}`); return; }
        if (action === "password") tell(username, res.data.password);
        else location.reload();
      });
    }));
  });
}

// ---- setup page: room physicians and routing rules (admin API)
function initSetup() {
  const error = document.getElementById("setup-error");
  if (!error) return;
  const fail = (res, what) => { error.textContent = problem(res, what); error.hidden = false; };
  $$("select[data-room-physician]").forEach((select) => select.addEventListener("change", async () => {
    const room = select.closest("[data-room]").dataset.room;
    if (!select.value) return;
    const res = await api("POST", "/api/v1/admin/room-physicians", {room_id: room, username: select.value});
    if (res.ok) toast(`${select.value} now signs the notes of ${room}.`);
    else fail(res, "assign the physician");
  }));
  const form = document.getElementById("rule-create");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await whileDisabled($("button[type=submit]", form), async () => {
      const f = form.elements;
      const res = await api("POST", "/api/v1/admin/routing-rules", {pool_id: f.pool_id.value,
        priority: Number(f.priority.value), room_id: f.room_id.value, room_prefix: f.room_prefix.value});
      if (res.ok) location.reload(); else fail(res, "add the rule");
    });
  });
}

// ---- consent: record or withdraw the patient's consent (review page, held visits on
// the queue page). Everything shown is set as text, never as markup.
const CONSENT_SOURCES = {device: "in the room", api: "in RoomScribe", cli: "by the operator",
  schedule: "from the clinic's schedule"};

function consentTarget(button) {
  return button.dataset.encounter || button.closest("[data-encounter]")?.dataset.encounter || "";
}

// The review page's consent line after consent was recorded.
function showConsentGiven(panel, view) {
  const line = $("#consent-state", panel);
  const badge = document.createElement("span");
  badge.className = "badge consent-given";
  badge.textContent = `consent ${view.method}`;
  const who = document.createElement("strong");
  who.textContent = view.obtained_by;
  const where = document.createElement("span");
  where.className = "muted";
  where.textContent = `(recorded ${CONSENT_SOURCES[view.source] || view.source})`;
  line.replaceChildren(badge, " Obtained by ", who, ", just now ", where);
  panel.className = "consent consent-given";
  $$("[data-consent], [data-consent-by]", panel).forEach((el) => (el.closest("label") || el).remove());
}

function initConsent() {
  const dialog = document.getElementById("withdraw-dialog");
  let pending = null;  // the button whose withdrawal the dialog asks about
  document.addEventListener("click", async (e) => {
    const record = e.target.closest("[data-consent]");
    if (record) {
      const box = record.closest("[data-consent-box]");
      const enc = consentTarget(record);
      const by = box && $("[data-consent-by]", box);
      await whileDisabled(record, async () => {
        const res = await api("POST", `/api/v1/encounters/${enc}/consent`,
          {method: record.dataset.consent, obtained_by: by ? by.value.trim() : ""});
        if (!res.ok) { toast(problem(res, "record consent for"), "bad"); return; }
        const row = record.closest("tr[data-held]");
        if (row) {
          row.remove();
          if (!$("tr[data-held]")) document.getElementById("held").hidden = true;
          toast("Consent recorded: the visit is transcribed now, and its draft comes to the queue.");
        } else {
          showConsentGiven(document.getElementById("consent"), res.data);
          toast("Consent recorded.");
        }
      });
      return;
    }
    const withdraw = e.target.closest("[data-withdraw]");
    if (withdraw && dialog) {
      pending = withdraw;
      $("#withdraw-reason", dialog).value = "";
      $("#withdraw-error", dialog).hidden = true;
      dialog.showModal();
    }
  });
  if (!dialog) return;
  $("#withdraw-cancel", dialog).addEventListener("click", () => { pending = null; dialog.close(); });
  const ok = $("#withdraw-ok", dialog);
  ok.addEventListener("click", () => whileDisabled(ok, async () => {
    if (!pending) return;
    const enc = consentTarget(pending);
    const res = await api("POST", `/api/v1/encounters/${enc}/consent/withdraw`,
      {reason: $("#withdraw-reason", dialog).value.trim()});
    if (!res.ok) {
      const error = $("#withdraw-error", dialog);
      error.textContent = problem(res, "withdraw consent for");
      error.hidden = false;
      return;
    }
    dialog.close();
    const row = pending.closest("tr[data-held]");
    pending = null;
    const kept = res.data.legal_hold;
    if (row) {
      row.remove();
      if (!$("tr[data-held]")) document.getElementById("held").hidden = true;
      toast(kept ? "Consent withdrawn; the audio is kept under a legal hold." : "Discarded: the visit's audio is deleted.");
      return;
    }
    if (kept) {
      const panel = document.getElementById("consent");
      const badge = document.createElement("span");
      badge.className = "badge consent-withdrawn";
      badge.textContent = "consent withdrawn";
      $("#consent-state", panel).replaceChildren(badge, " Kept under a legal hold: nothing was deleted.");
      $(".consent-actions", panel)?.remove();
      return;
    }
    document.dispatchEvent(new Event("roomscribe:deleted"));
    sessionStorage.setItem("roomscribe-flash", "Consent withdrawn: the visit's audio, transcript and note were deleted.");
    location.replace("/queue");
  }));
}

// A message left by the page before (a deleted note cannot say it itself).
function showFlash() {
  const text = sessionStorage.getItem("roomscribe-flash");
  if (!text) return;
  sessionStorage.removeItem("roomscribe-flash");
  toast(text);
}

// ---- item page: the note as sentences tied to their evidence
const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

function sentenceEvidence(sentence) {
  const ids = [];
  let start = Infinity, end = 0;
  for (const e of sentence.evidence || []) {
    ids.push(...e.segment_ids);
    start = Math.min(start, e.start_s);
    end = Math.max(end, e.end_s);
  }
  return {ids, start: Number.isFinite(start) ? start : null, end};
}

function renderSection(key, section) {
  const view = document.querySelector(`[data-section-view="${CSS.escape(key)}"]`);
  if (!view) return;
  view.textContent = "";
  if (!section.text.trim()) {
    const empty = document.createElement("p");
    empty.className = "muted empty";
    empty.textContent = "Empty.";
    view.append(empty);
  }
  (section.sentences || []).forEach((n, i) => {
    const el = document.createElement("span");
    el.className = "sent";
    el.tabIndex = 0;
    el.setAttribute("role", "button");
    el.dataset.section = key;
    el.dataset.index = i;
    const {ids, start, end} = sentenceEvidence(n);
    el.dataset.segments = ids.join(",");
    if (start !== null) { el.dataset.start = start; el.dataset.end = end; }
    el.textContent = n.text;
    if (n.origin === "edited" || n.origin === "added") {
      el.classList.add("human", n.origin);
      const tag = document.createElement("span");
      tag.className = "human-tag";
      tag.textContent = n.origin === "edited" ? `edited by ${n.edited_by || "a reviewer"}`
        : `added by ${n.edited_by || "a reviewer"}`;
      el.append(" ", tag);
    }
    view.append(el, " ");
  });
  let panel = view.nextElementSibling;
  if (!panel || !panel.classList.contains("inline-ev")) {
    panel = document.createElement("div");
    panel.className = "inline-ev";
    panel.setAttribute("role", "region");
    panel.setAttribute("aria-label", "Source of the sentence");
    panel.hidden = true;
    view.after(panel);
  }
  panel.hidden = true;
}

function markUsedSegments(doc) {
  const used = new Map();
  const note = (ids, title) => ids.forEach((id) => {
    if (!used.has(id)) used.set(id, new Set());
    used.get(id).add(title);
  });
  for (const s of doc.sections) {
    for (const n of s.sentences || []) note(sentenceEvidence(n).ids, s.title);
  }
  for (const o of doc.orders) {
    if (o.decision !== "rejected") note((o.evidence || []).flatMap((e) => e.segment_ids), "Orders");
  }
  $$("#timeline .tick").forEach((b) => b.classList.toggle("used", used.has(Number(b.dataset.tick))));
  $$("#segments li[data-segment]").forEach((li) => {
    const titles = used.get(Number(li.dataset.segment));
    li.classList.toggle("used", !!titles);
    const tag = $(".used-in", li);
    tag.hidden = !titles;
    tag.textContent = titles ? `In the note: ${[...titles].map((t) => t.charAt(0) + t.slice(1).toLowerCase()).join(", ")}` : "";
  });
}

// The visit as a strip: one block per transcript segment, placed by time and coloured by
// speaker; a block the note used is marked; a click plays that segment.
function drawTimeline(segments, strip) {
  if (!strip || !segments.length) return;
  const total = Math.max(...segments.map((s) => s.end_s), 1);
  strip.replaceChildren(...segments.map((s) => {
    const b = document.createElement("span");  // the transcript's buttons are the accessible twin
    b.className = `tick speaker-${s.speaker}`;
    b.style.left = `${(100 * s.start_s) / total}%`;
    b.style.width = `${Math.max(0.6, (100 * (s.end_s - s.start_s)) / total)}%`;
    b.dataset.start = s.start_s;
    b.dataset.end = s.end_s;
    b.dataset.segments = s.id;
    b.dataset.tick = s.id;
    b.title = `${s.speaker} ${clock(s.start_s)}: ${s.text}`;
    return b;
  }));
}

function initItem() {
  const head = document.getElementById("item");
  if (!head) return;
  const id = head.dataset.item;
  const me = head.dataset.me;
  const base = `/api/v1/review/items/${id}`;
  const form = document.getElementById("note");
  form.addEventListener("submit", (e) => e.preventDefault());
  const player = document.getElementById("player");
  const segments = JSON.parse(document.getElementById("segments-json").textContent);
  const segById = new Map(segments.map((s) => [s.id, s]));
  let doc = JSON.parse(document.getElementById("doc-json").textContent);
  let version = Number(head.dataset.version);
  let dirty = false;
  let amendReason = null;
  const storeKey = `roomscribe-unsaved:${me}:${id}`;

  doc.sections.forEach((s) => renderSection(s.key, s));
  drawTimeline(segments, $("#timeline"));
  markUsedSegments(doc);

  // -- evidence: highlight the transcript lines, scroll the transcript pane only (never
  // the page: on a tablet the pane is below the note), and play the span.
  function highlight(ids) {
    $$(".seg.hit").forEach((s) => s.classList.remove("hit"));
    const pane = $("aside.transcript");
    ids.forEach((sid, i) => {
      const seg = document.getElementById(`seg-${sid}`);
      if (!seg) return;
      seg.classList.add("hit");
      if (i === 0 && pane.scrollHeight > pane.clientHeight) {
        pane.scrollTo({top: seg.offsetTop - pane.clientHeight / 3, behavior: "smooth"});
      }
    });
  }

  function playSpan(start, end, label) {
    const from = Math.max(0, start - 0.25);
    const to = end + 0.25;
    player.src = `${base}/audio.wav?start=${from.toFixed(2)}&end=${to.toFixed(2)}`;
    player.play().catch(() => {});
    $("#player-now").textContent = `Playing ${clock(start)}–${clock(end)}${label ? ": " + label : ""}`;
    $("#whole-visit").hidden = false;
  }

  $("#whole-visit").addEventListener("click", () => {
    player.src = `${base}/audio.wav`;
    player.play().catch(() => {});
    $("#player-now").textContent = "The whole visit";
    $("#whole-visit").hidden = true;
  });

  function showSource(el) {
    $$(".sent.active").forEach((s) => s.classList.remove("active"));
    el.classList.add("active");
    const section = doc.sections.find((s) => s.key === el.dataset.section);
    const sentence = section.sentences[Number(el.dataset.index)];
    const panel = el.closest(".section").querySelector(".inline-ev");
    const {ids, start, end} = sentenceEvidence(sentence);
    const lines = ids.map((sid) => segById.get(sid)).filter(Boolean).map((seg) =>
      `<li><span class="speaker">${escapeHtml(seg.speaker)}</span> <span class="muted">${clock(seg.start_s)}</span> ${escapeHtml(seg.text)}</li>`);
    let html = "";
    if (sentence.origin === "edited") {
      html += `<p class="ai-was">Changed by ${escapeHtml(sentence.edited_by || "a reviewer")}. The AI wrote: “${escapeHtml(sentence.ai_text || "")}”</p>`;
    } else if (sentence.origin === "added") {
      html += `<p class="ai-was">Written by ${escapeHtml(sentence.edited_by || "a reviewer")}: no words of the visit behind it.</p>`;
    }
    if (lines.length) {
      html += `<ol class="source-lines">${lines.join("")}</ol>
        <button type="button" class="play-source">▶ Play ${clock(start)}–${clock(end)}</button>`;
    } else if (!sentence.origin) {
      html += `<p class="muted">No transcript lines are linked to this sentence.</p>`;
    }
    panel.innerHTML = html;
    panel.hidden = !html;
    const play = $(".play-source", panel);
    if (play) play.addEventListener("click", () => playSpan(start, end, "the sentence's source"));
    highlight(ids);
    return {start, end};
  }

  form.addEventListener("click", (e) => {
    const sent = e.target.closest(".sent");
    if (!sent) return;
    const {start, end} = showSource(sent);
    if (start !== null) playSpan(start, end, "the sentence's source");
  });
  form.addEventListener("focusin", (e) => {
    if (e.target.matches(".sent")) showSource(e.target);
  });
  form.addEventListener("keydown", (e) => {
    if (e.target.matches(".sent") && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      const {start, end} = showSource(e.target);
      if (start !== null) playSpan(start, end, "the sentence's source");
    }
  });

  document.addEventListener("click", (e) => {
    const b = e.target.closest("button.ev, #timeline .tick");
    if (!b) return;
    highlight((b.dataset.segments || "").split(",").filter(Boolean));
    playSpan(Number(b.dataset.start), Number(b.dataset.end), b.title || "");
  });

  // -- editing
  function openSection(key, focus = true) {
    const area = document.getElementById(`sec-${key}`);
    const view = document.querySelector(`[data-section-view="${CSS.escape(key)}"]`);
    const button = area.closest(".section").querySelector(".edit-section");
    if (!area || area.readOnly) return;
    area.hidden = false;
    view.hidden = true;
    view.nextElementSibling.hidden = true;
    if (button) { button.setAttribute("aria-expanded", "true"); button.hidden = true; }
    if (focus) area.focus();
  }

  form.addEventListener("click", (e) => {
    const b = e.target.closest(".edit-section");
    if (b) openSection(b.closest(".section").dataset.key);
  });
  form.addEventListener("dblclick", (e) => {
    const sent = e.target.closest(".sent");
    if (sent) openSection(sent.dataset.section);
  });

  const changed = () => { dirty = true; autosave(); };

  // Name suggestions while typing (medications from the drug vocabulary).
  let suggestTimer = null;
  form.addEventListener("input", (e) => {
    const input = e.target.closest('input[data-field="name"]');
    if (!input || input.value.trim().length < 2) return;
    const kind = input.closest("fieldset").dataset.kind;
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(async () => {
      const res = await api("GET", `/api/v1/review/suggest?kind=${encodeURIComponent(kind)}&q=${encodeURIComponent(input.value)}`);
      const list = document.getElementById(`names-${kind}`);
      if (!res.ok || !list) return;
      list.replaceChildren(...res.data.map((n) => Object.assign(document.createElement("option"), {value: n})));
    }, 250);
  });
  form.addEventListener("input", changed);
  form.addEventListener("change", (e) => {
    if (e.target.matches("select[data-instruction-kind]")) {
      e.target.closest("fieldset").querySelector(".kind-label").textContent = kindLabel(e.target.value);
    }
    if (e.target.matches('select[data-field="kind"]')) orderKindChanged(e.target.closest("fieldset"));
    markLeftOut(form);
    changed();
  });
  form.addEventListener("click", (e) => {
    const remove = e.target.closest("fieldset[data-instruction] button.remove");
    if (remove) { toggleRemove(remove.closest("fieldset")); changed(); }
    const removeOrder = e.target.closest("fieldset[data-order] button.remove-order");
    if (removeOrder) { toggleRemoveOrder(removeOrder.closest("fieldset")); changed(); }
  });
  $("#add-instruction")?.addEventListener("click", () => addInstruction(form));
  $("#new-instruction-text")?.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); addInstruction(form); }
  });
  $("#add-order")?.addEventListener("click", () => { addOrder(); changed(); });
  $("#accept-rest")?.addEventListener("click", (e) => {
    $$("fieldset[data-order]").filter((fs) => !$("input[type=radio]:checked", fs)).forEach((fs) => {
      $('input[type=radio][value="accepted"]', fs).checked = true;
    });
    e.target.hidden = true;
    markLeftOut(form);
    changed();
  });

  // -- autosave: what is typed is kept in this tab's session storage until it is saved
  // (a reload, a crash or a new login in this tab brings it back; closing the tab or
  // logging out clears it).
  let autosaveTimer = null;
  function autosave() {
    clearTimeout(autosaveTimer);
    autosaveTimer = setTimeout(() => {
      const edit = collectEdit(form);
      if (!edit.sections_changed) { sessionStorage.removeItem(storeKey); return; }
      sessionStorage.setItem(storeKey, JSON.stringify({version, at: new Date().toISOString(), edit, reason: amendReason}));
    }, 500);
  }

  function restore(saved) {
    for (const [key, text] of Object.entries(saved.edit.sections)) {
      const area = document.getElementById(`sec-${key}`);
      if (area) { area.value = text; openSection(key, false); }
    }
    for (const o of saved.edit.orders) {
      const fs = o.id ? $(`fieldset[data-order="${CSS.escape(o.id)}"]`) : addOrder(o.fields);
      if (!fs) continue;
      if (o.remove) { toggleRemoveOrder(fs); continue; }
      for (const [f, v] of Object.entries(o.fields || {})) {
        const input = $(`[data-field="${f}"]`, fs);
        if (input) input.value = v;
      }
      orderKindChanged(fs);
      const radio = $(`input[type=radio][value="${o.decision === "modified" ? "accepted" : o.decision}"]`, fs);
      if (radio) radio.checked = true;
    }
    for (const n of saved.edit.instructions) {
      if (!n.id) {
        $("#new-instruction-kind").value = n.fields.kind;
        $("#new-instruction-text").value = n.fields.text;
        addInstruction(form);
        continue;
      }
      const fs = $(`fieldset[data-instruction="${CSS.escape(n.id)}"]`);
      if (!fs) continue;
      if (n.remove) { toggleRemove(fs); continue; }
      if (n.fields.text !== undefined) $("textarea", fs).value = n.fields.text;
      const kind = $("select[data-instruction-kind]", fs);
      if (kind && n.fields.kind) kind.value = n.fields.kind;
    }
    markLeftOut(form);
    dirty = true;
  }

  (function offerRestore() {
    const raw = sessionStorage.getItem(storeKey);
    if (!raw) return;
    const saved = JSON.parse(raw);
    const at = new Date(saved.at).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    if (form.querySelector("textarea[data-section]")?.readOnly && !head.dataset.canAmend) {
      banner(`You had unsaved changes from ${at}, but you can no longer edit this note.
        <button type="button" id="restore-copy">Show them</button> <button type="button" id="restore-discard">Discard</button>`, "restore-banner");
    } else if (saved.version === version) {
      if (saved.reason !== null && saved.reason !== undefined) startAmend(saved.reason);
      restore(saved);
      banner(`Your unsaved changes from ${at} are back on the page. Save them, or
        <button type="button" id="restore-discard">discard them</button>.`, "restore-banner");
    } else {
      banner(`You had unsaved changes from ${at} on version ${saved.version}; the note is now version ${version}.
        <button type="button" id="restore-apply">Put my changes on version ${version}</button>
        <button type="button" id="restore-discard">Discard them</button>`, "restore-banner");
    }
    const rb = document.getElementById("restore-banner");
    rb.addEventListener("click", (e) => {
      if (e.target.id === "restore-discard") {
        sessionStorage.removeItem(storeKey);
        if (dirty) { location.reload(); return; }
        banner("", "restore-banner");
      } else if (e.target.id === "restore-apply") {
        restore(saved);
        banner("Your changes are on the page: check them against the newer version, then save.", "restore-banner");
      } else if (e.target.id === "restore-copy") {
        banner(`<pre class="copy">${escapeHtml(Object.values(saved.edit.sections).join("\n\n"))}</pre>`, "restore-banner");
      }
    });
  })();

  // -- saving
  let saving = null;
  async function save() {
    if (!saving) saving = saveNow().finally(() => { saving = null; });
    return saving;
  }

  async function saveNow() {
    const edit = collectEdit(form);
    delete edit.sections_changed;
    const body = {base_version: version, ...edit};
    if (amendReason !== null) body.reason = amendReason;
    const res = await api("PUT", `${base}/note`, body);
    if (res.ok) {
      version = res.data.version;
      dirty = false;
      sessionStorage.removeItem(storeKey);
      banner("", "restore-banner");
      applySaved(res.data);
      toast(`Saved as version ${version}`);
      if (amendReason !== null) { location.reload(); }
      return true;
    }
    if (res.status === 409 && res.data && res.data.error === "version-conflict") {
      await showTheirs();
      return false;
    }
    toast(problem(res, "save"), "bad");
    return false;
  }

  function applySaved(item) {
    doc = item.document;
    for (const s of doc.sections) {
      const area = document.getElementById(`sec-${s.key}`);
      if (!area) continue;
      area.value = s.text;
      area.defaultValue = s.text;
      area.hidden = true;
      const view = document.querySelector(`[data-section-view="${CSS.escape(s.key)}"]`);
      view.hidden = false;
      const button = area.closest(".section").querySelector(".edit-section");
      if (button && amendReason === null) { button.hidden = false; button.setAttribute("aria-expanded", "false"); }
      renderSection(s.key, s);
    }
    markUsedSegments(doc);
    markSaved(form, item);
    $("#version-label").textContent = item.version;
    if (item.lease_expires_at) setLease(item.lease_expires_at);
  }

  // Someone else saved: show their version beside what is typed here, section by section.
  async function lastAuthor() {
    const res = await api("GET", `${base}/versions`);
    return res.ok && res.data.length ? res.data[res.data.length - 1].author_name : "";
  }

  async function showTheirs() {
    const res = await api("GET", base);
    if (!res.ok) return;
    const savedBy = await lastAuthor();
    const theirs = res.data;
    const mine = collectEdit(form);
    const rows = [];
    for (const s of theirs.document.sections) {
      const area = document.getElementById(`sec-${s.key}`);
      if (!area) continue;
      const theirText = s.text;
      const iChanged = area.value !== area.defaultValue;
      if (theirText === area.defaultValue.trim()) continue;  // they did not touch it
      if (!iChanged) {  // only they changed it: take theirs
        area.value = theirText;
        area.defaultValue = theirText;
        continue;
      }
      rows.push(`<div class="compare" data-key="${escapeHtml(s.key)}"><h3>${escapeHtml(s.title)}</h3>
        <div class="cols"><div><h4>${escapeHtml(savedBy || "Their")} version</h4><p>${escapeHtml(theirText)}</p></div>
        <div><h4>Yours (not saved)</h4><p>${escapeHtml(area.value)}</p></div></div>
        <button type="button" data-keep="mine">Keep mine</button> <button type="button" data-keep="theirs">Use theirs</button></div>`);
      area.defaultValue = theirText;  // the base is now their version
    }
    doc = theirs.document;
    for (const s of doc.sections) {
      const area = document.getElementById(`sec-${s.key}`);
      if (area && area.hidden) renderSection(s.key, s);
    }
    markUsedSegments(doc);
    version = theirs.version;
    $("#version-label").textContent = version;
    const orderNote = mine.orders.length || mine.instructions.length
      ? " Your order and instruction changes are still on the page: check them against theirs before saving." : "";
    banner(`<p><strong>${escapeHtml(savedBy || "Someone")} saved version ${version}</strong> while you were editing. Nothing was overwritten.
      ${rows.length ? "Sections you both changed are below: pick one for each, then save." : "Your changes do not overlap theirs: save when ready."}${orderNote}</p>${rows.join("")}`);
    $$("#banner .compare").forEach((box) => box.addEventListener("click", (e) => {
      const keep = e.target.dataset.keep;
      if (!keep) return;
      const area = document.getElementById(`sec-${box.dataset.key}`);
      if (keep === "theirs") area.value = area.defaultValue;
      box.remove();
      if (!$("#banner .compare")) banner("");
      autosave();
    }));
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
    if (dirty && action === "send") {
      if (!(await save())) return;
    }
    const res = await api("POST", `${base}/${action}`, body);
    if (res.ok) {
      if (action === "send" || action === "return") {
        dirty = false;
        location.href = "/queue";
      } else if (action === "claim" || action === "release") {
        if (!dirty) location.reload();
        else toast(action === "claim" ? "Claimed. Your text is still here." : "Released.");
      }
    } else {
      toast(problem(res, action), "bad");
    }
  }

  // -- amending a signed note: an explicit action with a reason
  function startAmend(reason) {
    amendReason = reason;
    $$("#note [readonly]").forEach((el) => el.removeAttribute("readonly"));
    $$("#note [disabled]").forEach((el) => el.removeAttribute("disabled"));
    $$("#note [data-unlock]").forEach((el) => { el.hidden = false; });
    $("#amend").hidden = true;
    $("#save").hidden = false;
    banner(`Amending. Reason: “${escapeHtml(reason)}”. Save the amendment when done.`, "restore-banner");
  }
  const amendButton = document.getElementById("amend");
  if (amendButton) {
    const dialog = document.getElementById("reason-dialog");
    amendButton.addEventListener("click", () => dialog.showModal());
    $("#reason-cancel").addEventListener("click", () => dialog.close());
    $("#reason-ok").addEventListener("click", () => {
      const reason = $("#amend-reason").value.trim();
      if (!reason) { toast("Give the reason for the amendment", "bad"); $("#amend-reason").focus(); return; }
      dialog.close();
      startAmend(reason);
    });
  }

  // -- signing with review
  const signButton = document.getElementById("review-sign");
  if (signButton) {
    signButton.addEventListener("click", () => whileDisabled(signButton, async () => {
      if (dirty && !(await save())) return;
      await openSignReview();
    }));
    $("#sign-cancel").addEventListener("click", () => $("#sign-dialog").close());
    $("#sign-dialog").addEventListener("change", updateSignButton);
    const confirm = $("#sign-confirm");
    confirm.addEventListener("click", () => whileDisabled(confirm, async () => {
      const acknowledged = $$("#sign-checks input[data-check]:checked").map((c) => c.dataset.check);
      const res = await api("POST", `${base}/sign`, {attest: $("#attest").checked, acknowledged});
      if (res.ok) {
        sessionStorage.removeItem(storeKey);
        location.href = "/queue";
        return;
      }
      if (res.data && res.data.checks) renderChecks(res.data.checks);
      toast(problem(res, "sign"), "bad");
    }));
  }

  function updateSignButton() {
    const blocked = $$("#sign-checks li.blocker").some((li) => {
      const box = $("input[data-check]", li);
      return !box || !box.checked;
    });
    $("#sign-confirm").disabled = blocked || !$("#attest").checked;
  }

  function renderChecks(checks) {
    const list = $("#sign-checks");
    list.innerHTML = "";
    if (!checks.length) list.innerHTML = `<li class="ok">No problems found.</li>`;
    for (const c of checks) {
      const li = document.createElement("li");
      li.className = c.severity;
      const label = c.severity === "blocker" ? (c.acknowledgeable ? "Needs your acknowledgement" : "Must be fixed before signing") : "Warning";
      li.innerHTML = `<strong>${label}:</strong> ${escapeHtml(c.message)}`;
      if (c.severity === "blocker" && c.acknowledgeable) {
        li.insertAdjacentHTML("beforeend", ` <label class="choice"><input type="checkbox" data-check="${escapeHtml(c.id)}"> I acknowledge this and sign anyway</label>`);
      }
      list.append(li);
    }
    updateSignButton();
  }

  function diffHtml(runs) {
    return runs.map((r) => r.op === "insert" ? `<ins>${escapeHtml(r.text)}</ins>`
      : r.op === "delete" ? `<del>${escapeHtml(r.text)}</del>` : escapeHtml(r.text)).join(" ");
  }

  async function openSignReview() {
    const dialog = $("#sign-dialog");
    $("#sign-loading").hidden = false;
    $("#sign-checks").innerHTML = "";
    $("#sign-changes").innerHTML = "";
    $("#attest").checked = false;
    $("#sign-confirm").disabled = true;
    dialog.showModal();
    const res = await api("GET", `${base}/sign-review`);
    $("#sign-loading").hidden = true;
    if (!res.ok) { $("#sign-changes").textContent = problem(res, "load the review"); return; }
    const review = res.data;
    renderChecks(review.checks);
    const parts = [];
    const changedSections = review.sections.filter((s) => s.changed);
    if (review.editors.length) parts.push(`<p>Changed by ${escapeHtml(review.editors.join(", "))}.</p>`);
    for (const s of changedSections) {
      parts.push(`<div class="diff"><h4>${escapeHtml(s.title)}</h4><p>${diffHtml(s.diff)}</p></div>`);
    }
    const unchanged = review.sections.length - changedSections.length;
    if (unchanged) parts.push(`<p class="muted">${unchanged} section${unchanged === 1 ? "" : "s"} as the AI drafted ${unchanged === 1 ? "it" : "them"}.</p>`);
    const orderLines = review.orders.filter((o) => o.change !== "unchanged").map((o) => {
      const fields = Object.entries(o.fields || {}).filter(([f]) => o.change !== "added" || f !== "name")
        .map(([f, [was, now]]) => o.change === "added" ? `${escapeHtml(f)} ${escapeHtml(now)}`
          : `${escapeHtml(f)}: <del>${escapeHtml(was || "—")}</del> <ins>${escapeHtml(now || "—")}</ins>`).join("; ");
      return `<li><strong>${escapeHtml(o.name || o.kind)}</strong> ${escapeHtml(o.change)}${o.added_by ? " by " + escapeHtml(o.added_by) : ""}${fields ? " — " + fields : ""}</li>`;
    });
    if (orderLines.length) parts.push(`<h4>Orders</h4><ul>${orderLines.join("")}</ul>`);
    const instructionLines = review.instructions.filter((n) => n.change !== "unchanged").map((n) => {
      const was = n.ai_text && n.change !== "added" ? `<del>${escapeHtml(n.ai_text)}</del> ` : "";
      const now = n.text && (n.change === "added" || n.change === "modified") ? `<ins>${escapeHtml(n.text)}</ins>` : "";
      return `<li>${escapeHtml(n.change)}: ${was}${now}</li>`;
    });
    if (instructionLines.length) parts.push(`<h4>Patient instructions</h4><ul>${instructionLines.join("")}</ul>`);
    if (!changedSections.length && !orderLines.length && !instructionLines.length) parts.unshift(`<p>No one changed the AI draft.</p>`);
    $("#sign-changes").innerHTML = parts.join("");
    $("#attest-text").textContent = review.attestation_preview;
    $("#attest").focus();
  }

  // -- the patient this visit was with
  const linkButton = document.getElementById("link-patient");
  if (linkButton) {
    const dialog = $("#patient-dialog");
    linkButton.addEventListener("click", async () => {
      $("#patient-error").hidden = true;
      dialog.showModal();
      const res = await api("GET", `${base}/appointments`);
      const box = $("#appointments");
      if (!res.ok) { box.textContent = problem(res, "load the schedule"); return; }
      if (!res.data.length) { box.innerHTML = `<p class="muted">No appointments in this room that day.</p>`; return; }
      box.innerHTML = res.data.map((a) => `<label class="choice appt"><input type="radio" name="appointment" value="${a.id}" ${a.linked ? "checked" : ""}>
        ${escapeHtml(a.local_start.slice(11))} · <strong>${escapeHtml(a.name)}</strong> · born ${escapeHtml(a.dob)} · MRN ${escapeHtml(a.mrn)}${a.reason ? " · " + escapeHtml(a.reason) : ""}</label>`).join("");
    });
    $("#patient-cancel").addEventListener("click", () => dialog.close());
    $("#patient-ok").addEventListener("click", async () => {
      const picked = $('#appointments input[name="appointment"]:checked');
      const body = picked ? {appointment_id: Number(picked.value)}
        : {name: $("#p-name").value.trim(), dob: $("#p-dob").value, mrn: $("#p-mrn").value.trim()};
      if (!picked && (!body.name || !body.dob || !body.mrn)) {
        $("#patient-error").textContent = "Pick an appointment, or give the name, date of birth and MRN.";
        $("#patient-error").hidden = false;
        return;
      }
      const res = await api("PUT", `${base}/patient`, body);
      if (!res.ok) {
        $("#patient-error").textContent = problem(res, "link the patient");
        $("#patient-error").hidden = false;
        return;
      }
      dialog.close();
      if (!dirty) location.reload();
      else toast("Patient linked. Save your changes; the header updates when the page reloads.");
    });
  }

  // -- the claim's lease: a countdown, and Extend (claiming again renews it)
  const lease = {end: head.dataset.lease ? new Date(head.dataset.lease) : null};
  const skew = new Date(head.dataset.now).getTime() - Date.now();
  function setLease(iso) {
    lease.end = iso ? new Date(iso) : null;
    tickLease();
  }
  function tickLease() {
    const box = $("#lease");
    if (!lease.end) { box.hidden = true; return; }
    const left = Math.round((lease.end.getTime() - (Date.now() + skew)) / 1000);
    box.hidden = false;
    box.classList.toggle("warn", left < 300);
    $("#lease-text").textContent = left > 0
      ? `Your claim ends in ${clock(left)}${left < 300 ? ": extend it to keep editing" : ""}`
      : "Your claim has lapsed: another partner may take this draft. Extend to claim it again.";
  }
  setInterval(tickLease, 1000);
  tickLease();
  const extend = $("#extend");
  extend.addEventListener("click", () => whileDisabled(extend, async () => {
    const res = await api("POST", `${base}/claim`);
    if (res.ok) { setLease(res.data.lease_expires_at); toast("Claim extended"); }
    else toast(problem(res, "extend the claim"), "bad");
  }));

  // -- the same note open in another tab of this browser
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel(`roomscribe-item-${id}`);
    const tab = Math.random().toString(36).slice(2);
    const others = new Set();
    const show = () => { document.getElementById("tabs-banner").hidden = others.size === 0; };
    channel.onmessage = (e) => {
      const msg = e.data;
      if (msg.me !== me || msg.tab === tab) return;
      if (msg.type === "open") { others.add(msg.tab); channel.postMessage({type: "here", tab, me}); }
      if (msg.type === "here") others.add(msg.tab);
      if (msg.type === "closed") others.delete(msg.tab);
      show();
    };
    channel.postMessage({type: "open", tab, me});
    window.addEventListener("pagehide", () => channel.postMessage({type: "closed", tab, me}));
  }

  // -- keyboard shortcuts (not while typing)
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      if (saveButton && !saveButton.hidden) saveButton.click();
      return;
    }
    if (e.target.closest("input, textarea, select, [contenteditable], dialog") || e.ctrlKey || e.metaKey || e.altKey) return;
    const sentences = $$(".sent").filter((s) => s.offsetParent !== null);
    const at = sentences.indexOf(document.activeElement);
    if (e.key === "j" || e.key === "k") {
      e.preventDefault();
      const next = sentences[e.key === "j" ? Math.min(at + 1, sentences.length - 1) : Math.max(at - 1, 0)];
      if (next) next.focus();
    } else if (e.key === "p") {
      const active = document.activeElement;
      if (active && active.matches(".sent")) active.click();
      else active?.closest("fieldset")?.querySelector("button.ev")?.click();
    } else if (e.key === "e") {
      const active = document.activeElement;
      if (active && active.matches(".sent")) { e.preventDefault(); openSection(active.dataset.section); }
    } else if (e.key === "a") {
      const fs = document.activeElement?.closest("fieldset[data-order]")
        || $$("fieldset[data-order]").find((f) => !$("input[type=radio]:checked", f));
      const accept = fs && $('input[type=radio][value="accepted"]', fs);
      if (accept && !accept.disabled) { accept.checked = true; accept.focus(); form.dispatchEvent(new Event("change")); changed(); }
    } else if (e.key === "S" && signButton) {
      signButton.click();
    } else if (e.key === "?") {
      $("#help-dialog").showModal();
    }
  });
  $("#shortcuts-help").addEventListener("click", () => $("#help-dialog").showModal());

  window.addEventListener("beforeunload", (e) => { if (dirty) { e.preventDefault(); } });
  // consent withdrawn: the note is deleted, so is any unsaved text of it
  document.addEventListener("roomscribe:deleted", () => { dirty = false; sessionStorage.removeItem(storeKey); });

  // -- someone else changed this note: say so; never reload under the reader
  live(async (msg) => {
    if (msg.type === "resync" || msg.item_id !== id || msg.actor === me) return;
    if (msg.version !== version) {
      if (dirty) { await showTheirs(); return; }
      const res = await api("GET", base);
      if (!res.ok) return;
      const sameOrders = JSON.stringify(res.data.document.orders) === JSON.stringify(doc.orders)
        && JSON.stringify(res.data.document.instructions || []) === JSON.stringify(doc.instructions || []);
      version = res.data.version;
      applySaved(res.data);
      banner(`${escapeHtml(await lastAuthor() || "Someone")} saved version ${version}; the note above shows it.${sameOrders ? "" :
        ` Their order or instruction changes show after you <button type="button" class="link" data-reload>reload</button>.`}`);
      return;
    }
    if (msg.action === "patient") {
      banner(`${escapeHtml(msg.actor_name || msg.actor || "Someone")} changed the patient of this visit.
        <button type="button" class="link" data-reload>Reload</button> to see who it is now before you go on.`);
      return;
    }
    $("#state-badge").textContent = (msg.state || "").replace("_", " ");
    banner(`${escapeHtml(msg.actor_name || msg.actor || "Someone")} changed this draft: it is now ${escapeHtml((msg.state || "").replace("_", " "))}.
      <button type="button" class="link" data-reload>Reload</button> to see what you can do with it now.`);
  });
}

// ---- item page helpers (pure DOM, no state)
function fieldValue(el) { return el.value; }

function collectEdit(root) {
  const sections = {};
  root.querySelectorAll("textarea[data-section]").forEach((t) => {
    if (t.value !== t.defaultValue) sections[t.dataset.section] = t.value;
  });
  const orders = [];
  root.querySelectorAll("fieldset[data-order]").forEach((fs) => {
    const id = fs.dataset.order || null;
    const picked = fs.querySelector("input[type=radio]:checked");
    const decision = picked ? picked.value : "pending";
    if (id && fs.classList.contains("removed")) { orders.push({id, decision, fields: {}, remove: true}); return; }
    const fields = {};
    fs.querySelectorAll("[data-field]").forEach((i) => {
      if (id ? fieldValue(i) !== i.dataset.initial : fieldValue(i).trim()) fields[i.dataset.field] = fieldValue(i).trim();
    });
    if (!id) {
      fields.kind = fs.querySelector('[data-field="kind"]').value;
      fields.status = fs.querySelector('[data-field="status"]').value;
      orders.push({id: null, decision: decision === "rejected" ? "rejected" : "accepted", fields});
      return;
    }
    const wasPicked = fs.querySelector("input[type=radio][checked]");
    if (Object.keys(fields).length || (picked && picked !== wasPicked)) {
      orders.push({id, decision, fields});
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
  const edit = {sections, orders, instructions};
  Object.defineProperty(edit, "sections_changed",
    {value: Object.keys(sections).length + orders.length + instructions.length > 0, enumerable: false, configurable: true});
  return edit;
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

// The fields an order of its kind has; the name's suggestions follow the kind.
function orderKindChanged(fs) {
  const kind = fs.querySelector('[data-field="kind"]').value;
  fs.dataset.kind = kind;
  fs.querySelectorAll("label[data-for]").forEach((label) => {
    const kinds = label.dataset.for;
    const input = label.querySelector("[data-field]");
    label.hidden = kinds !== "*" && !kinds.split(" ").includes(kind) && !input.value;
  });
  fs.querySelector('[data-field="name"]').setAttribute("list", `names-${kind}`);
  const select = fs.querySelector('[data-field="kind"]');
  fs.querySelector(".kind-label").textContent = select.options[select.selectedIndex].textContent;
}

let newOrders = 0;
function addOrder(fields) {
  const fs = document.getElementById("order-template").content.firstElementChild.cloneNode(true);
  newOrders += 1;
  fs.querySelectorAll("input[type=radio]").forEach((r) => { r.name = `d-new-${newOrders}`; });
  fs.querySelector(".order-name").textContent = "new order";
  for (const [f, v] of Object.entries(fields || {})) {
    const input = fs.querySelector(`[data-field="${f}"]`);
    if (input) input.value = v;
  }
  document.getElementById("orders").append(fs);
  document.getElementById("no-orders")?.remove();
  orderKindChanged(fs);
  if (!fields) fs.querySelector('[data-field="kind"]').focus();
  return fs;
}

function toggleRemoveOrder(fs) {
  if (!fs.dataset.order) { fs.remove(); return; }  // added and not saved yet
  const removed = !fs.classList.contains("removed");
  fs.classList.toggle("removed", removed);
  const button = fs.querySelector("button.remove-order");
  button.setAttribute("aria-pressed", String(removed));
  button.textContent = removed ? "Keep order" : "Remove order";
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

// The order rows after a save: removed ones go, added ones get their ids, and every
// field's "initial" value is what the server stored.
function syncOrders(root, saved) {
  const rows = [...root.querySelectorAll("fieldset[data-order]")];
  const known = new Set(rows.map((fs) => fs.dataset.order).filter(Boolean));
  const added = saved.filter((o) => !known.has(o.id));
  rows.filter((fs) => !fs.dataset.order).forEach((fs, i) => {
    if (!added[i]) return;
    fs.dataset.order = added[i].id;
    fs.dataset.human = "1";
    fs.querySelectorAll("input[type=radio]").forEach((r) => { r.name = `d-${added[i].id}`; });
  });
  const byId = new Map(saved.map((o) => [o.id, o]));
  root.querySelectorAll("fieldset[data-order]").forEach((fs) => {
    const o = byId.get(fs.dataset.order);
    if (!o) { fs.remove(); return; }
    fs.className = `order decision-${o.decision}`;
    fs.querySelector("legend .badge.decision").textContent = o.decision;
    fs.querySelector(".order-name").textContent = o.spoken || o.name;
    fs.querySelectorAll("[data-field]").forEach((i) => {
      i.value = o[i.dataset.field] || (i.dataset.field === "status" ? "new" : "");
      i.dataset.initial = i.value;
    });
    orderKindChanged(fs);
  });
}

// After a save the page shows what the server stored, and later edits diff against it.
function markSaved(root, item) {
  root.querySelectorAll("textarea").forEach((el) => { el.defaultValue = el.value; });
  root.querySelectorAll("input[type=radio]").forEach((el) => {
    el.defaultChecked = el.checked;
    if (el.checked) el.setAttribute("checked", ""); else el.removeAttribute("checked");
  });
  syncOrders(root, item.document.orders);
  syncInstructions(root, item.document.instructions || []);
  markLeftOut(root);
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

document.addEventListener("DOMContentLoaded", () => {
  document.addEventListener("click", (e) => { if (e.target.closest("[data-reload]")) location.reload(); });
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", async () => {
    sessionStorage.clear();  // no unsaved note text stays behind on a shared workstation
    await api("POST", "/api/v1/auth/logout");
    location.replace("/login");  // Back then asks the server again (no-store): no PHI
  });
  initRelogin();
  initQueue();
  initRooms();
  initDeviceActions();
  initPools();
  initUsers();
  initSetup();
  initItem();
  initConsent();
  showFlash();
});
