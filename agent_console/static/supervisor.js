// Supervisor monitor (wallboard): queue cards, alerts, agent grid with spy/force actions,
// abandoned-calls worklist. Topics: queues, agents, alerts, worklist.
import {
  $, act, api, clockTime, duration, el, LiveSocket, percent, serverNow, setChildren, signOut,
  sinceNode, startTicker, STATUS_LABELS, whoami,
} from "./common.js";

const STATUS_ORDER = ["ready", "ringing", "reserved", "on_call", "on_hold", "wrap_up", "not_ready", "logged_out"];

const state = { queues: new Map(), agents: new Map(), alerts: new Map(), abandoned: [], reasons: [], queueNames: [] };

// Colored against the goal: at or above goal good, within 10 points warn, below bad.
function slClass(value, goal) {
  if (value === null || value === undefined || goal === null || goal === undefined) return "sl-none";
  if (value >= goal) return "sl-good";
  return value >= goal - 0.1 ? "sl-warn" : "sl-bad";
}

function stat(label, value, attrs = {}) {
  const node = value instanceof Node ? value : el("span", {}, String(value));
  return el("div", { class: `stat ${attrs.class || ""}`.trim() },
    el("span", { class: "stat-value", dataset: attrs.testid ? { testid: attrs.testid } : undefined }, node),
    el("span", { class: "stat-label" }, label));
}

function queueCard(q) {
  const longest = q.longest_wait ? sinceNode((q.at || serverNow()) - q.longest_wait) : el("span", {}, "–");
  const agents = STATUS_ORDER.filter((s) => (q.agents || {})[s])
    .map((s) => el("li", { class: `status-${s}` }, `${STATUS_LABELS[s] || s} ${q.agents[s]}`));
  return el("article", { class: `queue-card ${q.waiting > 0 ? "has-waiting" : ""}`, dataset: { queue: q.queue, testid: "queue-card" } },
    el("h2", {}, q.queue),
    el("div", { class: "stats-main" },
      stat("waiting", q.waiting ?? 0, { class: "huge", testid: "queue-waiting" }),
      stat("longest wait", longest, { class: "huge", testid: "queue-longest" })),
    el("div", { class: "stats" },
      stat(`SL today (${q.sl_threshold ?? "?"}s)`, percent(q.service_level), { class: slClass(q.service_level, q.sl_goal), testid: "queue-sl" }),
      stat("SL 30 min", percent(q.service_level_30m), { class: slClass(q.service_level_30m, q.sl_goal), testid: "queue-sl30" }),
      stat("ASA", duration(q.asa)),
      stat("answered", q.answered ?? 0),
      stat("abandoned", q.abandoned ?? 0)),
    el("p", { class: "goal" }, `goal ${percent(q.sl_goal)}`),
    el("ul", { class: "agent-counts", "aria-label": "Agents by state" }, agents));
}

function renderQueues() {
  const names = [...new Set([...state.queueNames, ...state.queues.keys()])].filter((n) => state.queues.has(n));
  setChildren($("queues"), names.map((n) => queueCard(state.queues.get(n))));
}

function renderAlerts() {
  const active = [...state.alerts.values()].filter((a) => a.active);
  $("alerts").hidden = active.length === 0;
  setChildren($("alerts"), active.map((a) => el("p", { class: `alert alert-${a.kind}`, dataset: { testid: "alert", alert: a.id } },
    el("strong", {}, a.queue || ""), " ", a.message, " ", sinceNode(a.since))));
}

// One row per agent, built once and updated in place: a frame for an agent must not take
// the keyboard focus or a half-chosen reason away from the supervisor working on that row.
const rows = new Map();

function agentRow(agent) {
  const id = agent.agent_id;
  const path = (suffix) => `/api/agents/${encodeURIComponent(id)}/${suffix}`;
  const spy = (mode) => () => {
    const body = { mode };
    const endpoint = $("spy-endpoint").value.trim();
    if (endpoint) body.endpoint = endpoint;
    act(`${mode} ${id}`, () => api("POST", path("spy"), body));
  };
  const cells = {
    name: el("th", { scope: "row" }),
    badge: el("span", { class: "badge", dataset: { testid: "agent-status" } }),
    time: el("span", { class: "timer", dataset: { testid: "agent-timer" } }),
    call: el("td"),
    reason: el("td"),
    spies: ["listen", "whisper", "barge"].map((mode) => el("button", { type: "button", click: spy(mode), dataset: { testid: `spy-${mode}` } }, mode[0].toUpperCase() + mode.slice(1))),
    select: el("select", { "aria-label": `Reason for ${agent.name || id}` }, state.reasons.map((r) => el("option", { value: r }, r))),
    logout: el("button", { type: "button", class: "danger", click: () => act(`Log out ${id}`, () => api("POST", path("logout"))), dataset: { testid: "force-logout" } }, "Log out"),
  };
  cells.row = el("tr", { dataset: { agent: id } },
    cells.name, el("td", {}, cells.badge), el("td", {}, cells.time), cells.call, cells.reason,
    el("td", {}, el("div", { class: "actions compact" }, cells.spies,
      el("button", { type: "button", click: () => act(`Force ready ${id}`, () => api("POST", path("ready"))), dataset: { testid: "force-ready" } }, "Force ready"),
      cells.select,
      el("button", { type: "button", click: () => act(`Force not ready ${id}`, () => api("POST", path("not-ready"), { reason: cells.select.value })), dataset: { testid: "force-not-ready" } }, "Not ready"),
      cells.logout)));
  return cells;
}

function updateRow(cells, a) {
  cells.row.dataset.status = a.status;
  cells.name.textContent = a.name || a.agent_id;
  cells.badge.textContent = STATUS_LABELS[a.status] || a.status;
  cells.badge.className = `badge status-${a.status}`;
  if (a.since) cells.time.dataset.since = String(a.since);
  else delete cells.time.dataset.since;
  cells.time.textContent = a.since ? duration(serverNow() - a.since) : "–";
  cells.call.textContent = [a.call_id ? "on call" : "", a.queue || ""].filter(Boolean).join(" · ") || "–";
  cells.reason.textContent = a.reason || "";
  const onCall = ["on_call", "on_hold"].includes(a.status);
  for (const button of cells.spies) button.disabled = !onCall;
  cells.logout.disabled = a.status === "logged_out";
}

function renderAgents() {
  const body = $("agent-rows");
  let added = false;
  for (const [id, cells] of rows) {
    if (!state.agents.has(id)) {
      cells.row.remove();
      rows.delete(id);
    }
  }
  for (const agent of state.agents.values()) {
    let cells = rows.get(agent.agent_id);
    if (!cells) {
      cells = agentRow(agent);
      rows.set(agent.agent_id, cells);
      added = true;
    }
    updateRow(cells, agent);
  }
  if (added) {
    const sorted = [...state.agents.values()].sort((a, b) => (a.name || a.agent_id).localeCompare(b.name || b.agent_id));
    body.replaceChildren(...sorted.map((a) => rows.get(a.agent_id).row));
  }
}

function renderWorklist() {
  const calls = state.abandoned;
  if (calls.length === 0) {
    setChildren($("worklist-rows"), el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No abandoned calls.")));
    return;
  }
  setChildren($("worklist-rows"), calls.map((c) => el("tr", { dataset: { key: c.key } },
    el("td", {}, clockTime(c.at)), el("td", {}, c.number || ""), el("td", {}, c.customer_name || "–"),
    el("td", {}, c.queue || ""), el("td", {}, duration(c.wait)),
    el("td", {}, el("button", { type: "button", dataset: { testid: "callback" },
      click: () => act(`Call back ${c.number}`, () => api("POST", `/api/worklist/abandoned/${encodeURIComponent(c.key)}/callback`)) }, "Call back")))));
}

function reset() {
  state.queues.clear();
  state.agents.clear();
  state.alerts.clear();
  state.abandoned = [];
  renderAll();
}

function renderAll() {
  renderQueues();
  renderAlerts();
  renderAgents();
  renderWorklist();
}

function frame(item) {
  const data = item.data;
  if (item.type === "queue") {
    state.queues.set(data.queue, data);
    renderQueues();
  } else if (item.type === "agent") {
    state.agents.set(data.agent_id, data);
    renderAgents();
  } else if (item.type === "alert") {
    if (data.active) state.alerts.set(data.id, data);
    else state.alerts.delete(data.id);
    renderAlerts();
  } else if (item.type === "abandoned") {
    state.abandoned = Array.isArray(data) ? data : [];
    renderWorklist();
  }
}

async function main() {
  const user = await whoami();
  if (user.role === "agent") {
    window.location.assign("/agent");
    return;
  }
  $("user-name").textContent = user.display_name || user.username;
  $("admin-link").hidden = user.role !== "admin";
  $("btn-sign-out").addEventListener("click", signOut);
  try {
    const config = await api("GET", "/api/console/config");
    state.reasons = config.not_ready_reasons || [];
    state.queueNames = config.queues || [];
  } catch (err) {
    $("notice").textContent = `Configuration not loaded: ${err.message}`;
  }
  renderAll();
  startTicker();
  setInterval(() => { $("server-clock").textContent = new Date(serverNow() * 1000).toLocaleTimeString(); }, 1000);
  new LiveSocket({ reset, frame }).start();
}

main().catch((err) => {
  if (err.status !== 401) $("notice").textContent = `Monitor failed to start: ${err.message}`;
});
