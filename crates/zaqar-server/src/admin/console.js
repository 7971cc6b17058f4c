// Zaqar web console: plain JavaScript against the v2 API of the same origin.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  creds: null,          // {token, project, roles, clientId}
  queue: null,          // selected queue name
  marker: null,         // queue listing marker of the next page
  samples: [],          // [{t, total, posted, deleted}] for the chart
  last: null,           // previous /metrics counters
  timer: null,
};
const MAX_SAMPLES = 90;
const INTERVAL_MS = 2000;

function showError(text) {
  const e = $("error");
  e.textContent = text || "";
  e.style.display = text ? "block" : "none";
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// One API call; resolves to {status, body} for 2xx, throws an Error with Zaqar's title and
// description otherwise.
async function api(method, path, body, contentType) {
  const c = state.creds;
  const headers = { "Client-ID": c.clientId, "Accept": "application/json" };
  if (c.token) headers["X-Auth-Token"] = c.token;
  if (c.project) headers["X-Project-ID"] = c.project;
  if (c.roles) headers["X-Roles"] = c.roles;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (_) { doc = text; }
  if (!resp.ok) {
    const title = (doc && doc.title) || `HTTP ${resp.status}`;
    const desc = doc && doc.description ? `: ${doc.description}` : "";
    throw new Error(`${title}${desc} (HTTP ${resp.status})`);
  }
  return { status: resp.status, body: doc };
}

const q = (name) => `/v2/queues/${encodeURIComponent(name)}`;

async function guarded(fn) {
  try {
    showError("");
    await fn();
  } catch (e) {
    showError(e.message);
  }
}

// ----- sign in ------------------------------------------------------------------------------

function signIn(creds) {
  state.creds = creds;
  sessionStorage.setItem("zaqar-console", JSON.stringify(creds));
  $("login").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("who").textContent = creds.project ? `project ${creds.project}` : "Keystone token";
  return loadQueues(true);
}

$("connect").addEventListener("click", () => guarded(async () => {
  const token = $("token").value.trim();
  const project = $("project").value.trim();
  if (!token && !project) throw new Error("Enter a token or a project id.");
  const creds = { token, project, roles: $("roles").value.trim(), clientId: uuid() };
  state.creds = creds;
  await api("GET", "/v2/queues?limit=1"); // checks the credentials before switching views
  await signIn(creds);
}));

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem("zaqar-console");
  location.reload();
});

// ----- queues -------------------------------------------------------------------------------

async function loadQueues(reset) {
  if (reset) { state.marker = null; $("queue-list").innerHTML = ""; }
  const params = new URLSearchParams({ limit: "20" });
  if (state.marker) params.set("marker", state.marker);
  const { body } = await api("GET", `/v2/queues?${params}`);
  const queues = (body && body.queues) || [];
  for (const item of queues) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = item.name;
    b.dataset.queue = item.name;
    b.addEventListener("click", () => guarded(() => selectQueue(item.name)));
    li.appendChild(b);
    $("queue-list").appendChild(li);
  }
  if (queues.length) state.marker = queues[queues.length - 1].name;
  $("more-queues").classList.toggle("hidden", queues.length < 20);
  $("no-queues").classList.toggle("hidden", $("queue-list").children.length > 0);
  markSelected();
}

function markSelected() {
  for (const b of document.querySelectorAll("#queue-list button")) {
    b.classList.toggle("selected", b.dataset.queue === state.queue);
  }
}

$("more-queues").addEventListener("click", () => guarded(() => loadQueues(false)));
$("refresh-queues").addEventListener("click", () => guarded(() => loadQueues(true)));
$("create-queue").addEventListener("click", () => guarded(async () => {
  const name = $("new-queue").value.trim();
  if (!name) throw new Error("Enter a queue name.");
  await api("PUT", q(name));
  $("new-queue").value = "";
  await loadQueues(true);
  await selectQueue(name);
}));

$("delete-queue").addEventListener("click", () => guarded(async () => {
  if (!state.queue) return;
  if (!confirm(`Delete queue ${state.queue} and its messages?`)) return;
  await api("DELETE", q(state.queue));
  state.queue = null;
  stopPolling();
  $("queue-panel").classList.add("hidden");
  $("empty-panel").classList.remove("hidden");
  await loadQueues(true);
}));

async function selectQueue(name) {
  state.queue = name;
  state.samples = [];
  $("queue-name").textContent = name;
  $("queue-panel").classList.remove("hidden");
  $("empty-panel").classList.add("hidden");
  $("messages").innerHTML = "";
  markSelected();
  await Promise.all([refreshStats(), peek(), loadSubscriptions()]);
  startPolling();
}

// ----- stats and the chart ------------------------------------------------------------------

function setStat(id, v) { $(id).textContent = v === undefined || v === null ? "0" : String(v); }

async function refreshStats() {
  if (!state.queue) return;
  const { body } = await api("GET", `${q(state.queue)}/stats`);
  const m = (body && body.messages) || {};
  const delayed = m.delayed || 0;
  setStat("stat-total", m.total);
  setStat("stat-free", Math.max(0, (m.free || 0) - delayed));
  setStat("stat-claimed", m.claimed);
  setStat("stat-delayed", delayed);
  const rates = await serverRates();
  state.samples.push({ t: Date.now(), total: m.total || 0, ...rates });
  if (state.samples.length > MAX_SAMPLES) state.samples.shift();
  drawChart();
}

// Messages posted and deleted per second on this server, from /metrics (same origin).
async function serverRates() {
  try {
    const text = await (await fetch("/metrics")).text();
    const read = (name) => {
      const line = text.split("\n").find((l) => l.startsWith(name + " "));
      return line ? Number(line.split(" ")[1]) : 0;
    };
    const now = { t: Date.now(), posted: read("zaqar_messages_posted_total"),
                  deleted: read("zaqar_messages_deleted_total") };
    const prev = state.last;
    state.last = now;
    if (!prev) return { posted: 0, deleted: 0 };
    const dt = Math.max(0.001, (now.t - prev.t) / 1000);
    return { posted: Math.max(0, (now.posted - prev.posted) / dt),
             deleted: Math.max(0, (now.deleted - prev.deleted) / dt) };
  } catch (_) {
    return { posted: 0, deleted: 0 };
  }
}

function drawChart() {
  const c = $("chart");
  const ctx = c.getContext("2d");
  const w = c.width, h = c.height, pad = 24;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#d8dee6";
  ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w - 4, h - pad); ctx.stroke();
  const s = state.samples;
  if (s.length < 1) return;
  const maxDepth = Math.max(1, ...s.map((x) => x.total));
  const maxRate = Math.max(1, ...s.map((x) => Math.max(x.posted, x.deleted)));
  const x = (i) => pad + (i * (w - pad - 8)) / Math.max(1, MAX_SAMPLES - 1);
  const line = (key, max, color) => {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    s.forEach((p, i) => {
      const y = h - pad - (p[key] / max) * (h - 2 * pad);
      if (i === 0) ctx.moveTo(x(i), y); else ctx.lineTo(x(i), y);
    });
    ctx.stroke();
  };
  line("total", maxDepth, "#2563eb");
  line("posted", maxRate, "#16a34a");
  line("deleted", maxRate, "#dc2626");
  ctx.fillStyle = "#5f6b7a"; ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(`max ${maxDepth} messages`, pad, 14);
  ctx.fillText(`max ${maxRate.toFixed(1)}/s`, w - 110, 14);
}

function startPolling() {
  stopPolling();
  state.timer = setInterval(() => guarded(refreshStats), INTERVAL_MS);
}

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

// ----- messages -----------------------------------------------------------------------------

async function peek() {
  if (!state.queue) return;
  const params = new URLSearchParams({ limit: "20", echo: "true" });
  if ($("peek-claimed").checked) params.set("include_claimed", "true");
  const { body } = await api("GET", `${q(state.queue)}/messages?${params}`);
  const tbody = $("messages");
  tbody.innerHTML = "";
  for (const m of (body && body.messages) || []) {
    const tr = document.createElement("tr");
    const claimed = (m.href || "").includes("claim_id=");
    const cells = [m.id, null, m.ttl, m.age, claimed ? "yes" : ""];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      if (i === 1) {
        const code = document.createElement("code");
        code.textContent = JSON.stringify(m.body);
        td.appendChild(code);
      } else {
        td.textContent = v === undefined || v === null ? "" : String(v);
      }
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
  if (!tbody.children.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5; td.className = "muted"; td.textContent = "No messages.";
    tr.appendChild(td); tbody.appendChild(tr);
  }
}

$("peek").addEventListener("click", () => guarded(peek));
$("post").addEventListener("click", () => guarded(async () => {
  let body;
  try { body = JSON.parse($("post-body").value); } catch (e) {
    throw new Error(`The body is not valid JSON: ${e.message}`);
  }
  const ttl = Number($("post-ttl").value) || 3600;
  const { body: res } = await api("POST", `${q(state.queue)}/messages`,
                                  { messages: [{ body, ttl }] });
  const id = res && res.resources && res.resources[0] ? res.resources[0].split("/").pop() : "";
  $("post-result").textContent = `posted ${id}`;
  await Promise.all([refreshStats(), peek()]);
}));

// ----- subscriptions ------------------------------------------------------------------------

async function loadSubscriptions() {
  if (!state.queue) return;
  const tbody = $("subscriptions");
  let subs = [];
  try {
    const { body } = await api("GET", `${q(state.queue)}/subscriptions`);
    subs = (body && body.subscriptions) || [];
  } catch (e) {
    tbody.innerHTML = "";
    const tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = 4; td.className = "muted"; td.textContent = e.message;
    tr.appendChild(td); tbody.appendChild(tr);
    return;
  }
  tbody.innerHTML = "";
  for (const s of subs) {
    const tr = document.createElement("tr");
    for (const v of [s.subscriber, s.ttl, s.confirmed ? "yes" : "no"]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button"; b.className = "danger"; b.textContent = "Delete";
    b.dataset.subscription = s.id;
    b.addEventListener("click", () => guarded(async () => {
      await api("DELETE", `${q(state.queue)}/subscriptions/${encodeURIComponent(s.id)}`);
      await loadSubscriptions();
    }));
    td.appendChild(b); tr.appendChild(td); tbody.appendChild(tr);
  }
}

$("sub-create").addEventListener("click", () => guarded(async () => {
  const subscriber = $("sub-subscriber").value.trim();
  if (!subscriber) throw new Error("Enter a subscriber URI.");
  const ttl = Number($("sub-ttl").value) || 3600;
  await api("POST", `${q(state.queue)}/subscriptions`, { subscriber, ttl, options: {} });
  $("sub-subscriber").value = "";
  await loadSubscriptions();
}));

// ----- start ----------------------------------------------------------------------------------

(function restore() {
  const saved = sessionStorage.getItem("zaqar-console");
  if (saved) {
    try { guarded(() => signIn(JSON.parse(saved))); } catch (_) { /* stay signed out */ }
  }
})();
