// Agent console: own state, current call, screen-pop, wrap-up, dial, customer search.
// Live data comes from the websocket topic agent:<id>; actions are the contract's POSTs.
import {
  $, act, api, clockTime, duration, el, LiveSocket, setChildren, signOut, sinceNode,
  since, startTicker, STATUS_LABELS, whoami,
} from "./common.js";

const state = {
  user: null, config: { dispositions: [], not_ready_reasons: [], queues: [], agents: [] },
  agent: null, call: null, pop: null, figures: null,
  wrapCallId: null, wrapSaved: new Set(), controlsFor: null,
};

const agentPath = (suffix) => `/api/agents/${encodeURIComponent(state.user.agent_id)}/${suffix}`;
const callPath = (id, suffix) => `/api/calls/${encodeURIComponent(id)}/${suffix}`;

// ---- agent state -------------------------------------------------------------------------
function renderAgent() {
  const agent = state.agent;
  const status = agent ? agent.status : "logged_out";
  const badge = $("status");
  badge.textContent = STATUS_LABELS[status] || status;
  badge.className = `badge status-${status}`;
  badge.dataset.status = status;
  $("status-reason").textContent = agent && agent.reason ? agent.reason : "";
  const timer = $("state-timer");
  if (agent && agent.since) timer.dataset.since = String(agent.since);
  else delete timer.dataset.since;
  timer.textContent = agent && agent.since ? since(agent.since) : "–";
  if (agent && agent.name) $("agent-name").textContent = agent.name;
  const busy = ["reserved", "ringing", "on_call", "on_hold"].includes(status);
  $("btn-ready").disabled = status === "ready" || busy;
  $("btn-not-ready").disabled = busy || status === "not_ready";
  $("btn-end-wrap").disabled = status !== "wrap_up";
  $("btn-agent-logout").disabled = status === "logged_out" || busy;
  renderWrap();
}

// ---- current call ------------------------------------------------------------------------
function renderCall() {
  const call = state.call;
  const body = $("call-body");
  if (call && call.call_id) state.wrapCallId = call.call_id;
  if (!call) {
    state.controlsFor = null;
    setChildren(body, el("p", { class: "muted", dataset: { testid: "no-call" } }, "No call."));
    renderWrap();
    return;
  }
  const started = call.answered_at || call.offered_at;
  const info = el("dl", { class: "facts", dataset: { testid: "call-info" } },
    el("dt", {}, "Number"), el("dd", { class: "big", dataset: { testid: "call-number" } }, call.number || "–"),
    el("dt", {}, "Queue"), el("dd", {}, call.queue || "–"),
    el("dt", {}, "Direction"), el("dd", {}, call.direction || "–"),
    el("dt", {}, "State"), el("dd", { dataset: { testid: "call-state" } }, call.held ? "held" : call.state),
    el("dt", {}, "Time"), el("dd", {}, call.state === "ended"
      ? el("span", { class: "timer", dataset: { testid: "call-timer" } }, since(started)) // frozen: the call is over
      : sinceNode(started, { dataset: { testid: "call-timer" } })),
  );
  if (state.controlsFor !== call.call_id || !$("call-controls")) {
    state.controlsFor = call.call_id;
    setChildren(body, el("div", { id: "call-info" }, info), callControls(call.call_id));
  } else {
    setChildren($("call-info"), info);
  }
  const ended = call.state === "ended";
  $("btn-hold").hidden = call.held || ended;
  $("btn-resume").hidden = !call.held || ended;
  $("btn-hangup").disabled = ended;
  $("transfer-form").hidden = ended || call.state === "transferring";
  $("transfer-attended").hidden = call.state !== "transferring";
  renderWrap();
}

function callControls(callId) {
  const kinds = el("select", { id: "xfer-kind", dataset: { testid: "transfer-kind" } },
    el("option", { value: "agent" }, "Agent"), el("option", { value: "queue" }, "Queue"),
    el("option", { value: "number" }, "Number"));
  const target = el("span", { id: "xfer-target-box" });
  const fillTarget = () => {
    const kind = kinds.value;
    let input;
    if (kind === "number") {
      input = el("input", { id: "xfer-target", inputmode: "tel", required: true });
    } else {
      const options = kind === "agent"
        ? state.config.agents.filter((a) => a.agent_id !== state.user.agent_id)
            .map((a) => el("option", { value: a.agent_id }, `${a.name} (${a.agent_id})`))
        : state.config.queues.map((q) => el("option", { value: q }, q));
      input = el("select", { id: "xfer-target", required: true }, options);
    }
    input.dataset.testid = "transfer-target";
    setChildren(target, el("label", { for: "xfer-target" }, "To"), input);
  };
  kinds.addEventListener("change", fillTarget);
  const mode = el("select", { id: "xfer-mode", dataset: { testid: "transfer-mode" } },
    el("option", { value: "blind" }, "Blind"), el("option", { value: "attended" }, "Attended"));
  const form = el("form", { id: "transfer-form", class: "row", submit: (event) => {
    event.preventDefault();
    act("Transfer", () => api("POST", callPath(callId, "transfer"), {
      mode: mode.value, to: { kind: kinds.value, target: $("xfer-target").value },
    }));
  } },
    el("label", { for: "xfer-mode" }, "Transfer"), mode,
    el("label", { for: "xfer-kind" }, "to"), kinds, target,
    el("button", { type: "submit", dataset: { testid: "transfer-submit" } }, "Transfer"));
  fillTarget();
  const post = (label, suffix) => () => act(label, () => api("POST", callPath(callId, suffix)));
  return el("div", { id: "call-controls" },
    el("div", { class: "actions" },
      el("button", { type: "button", id: "btn-hold", click: post("Hold", "hold"), dataset: { testid: "btn-hold" } }, "Hold"),
      el("button", { type: "button", id: "btn-resume", click: post("Resume", "resume"), dataset: { testid: "btn-resume" } }, "Resume"),
      el("button", { type: "button", id: "btn-hangup", class: "danger", click: post("Hang up", "hangup"), dataset: { testid: "btn-hangup" } }, "Hang up")),
    form,
    el("div", { id: "transfer-attended", class: "actions" },
      el("button", { type: "button", click: post("Complete transfer", "transfer/complete"), dataset: { testid: "btn-transfer-complete" } }, "Complete transfer"),
      el("button", { type: "button", class: "secondary", click: post("Cancel transfer", "transfer/cancel"), dataset: { testid: "btn-transfer-cancel" } }, "Cancel transfer")));
}

// ---- wrap-up -----------------------------------------------------------------------------
function renderWrap() {
  const id = state.wrapCallId;
  const status = state.agent ? state.agent.status : null;
  const ended = state.call === null || (state.call && state.call.state === "ended");
  const show = id !== null && !state.wrapSaved.has(id) && (status === "wrap_up" || ended);
  $("wrap-panel").hidden = !show;
}

async function saveWrap(end) {
  const id = state.wrapCallId;
  const disposition = $("wrap-disposition").value;
  if (!id || !disposition) return;
  const ok = await act(end ? "Save and ready" : "Save wrap-up", () => api("POST", callPath(id, "wrap-up"), {
    disposition, notes: $("wrap-notes").value, end,
  }));
  if (ok) {
    state.wrapSaved.add(id);
    $("wrap-notes").value = "";
    renderWrap();
  }
}

// ---- screen-pop --------------------------------------------------------------------------
function flags(insight) {
  if (!insight) return null;
  const list = el("ul", { class: "flags", dataset: { testid: "insight-flags" } });
  if (insight.vip) list.append(el("li", { class: "flag vip" }, "VIP"));
  if (insight.repeat_caller) list.append(el("li", { class: "flag repeat" }, "Repeat caller"));
  if (insight.churn_warning) list.append(el("li", { class: "flag churn" }, "Churn risk"));
  for (const reason of insight.reasons || []) list.append(el("li", { class: "flag reason" }, reason));
  return list;
}

function historyTable(history) {
  if (!history || history.length === 0) return el("p", { class: "muted" }, "No earlier interactions.");
  return el("table", { class: "table", dataset: { testid: "pop-history" } },
    el("caption", {}, "Last interactions"),
    el("thead", {}, el("tr", {}, ["When", "Direction", "Queue", "Outcome", "Disposition", "Notes"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, history.slice(0, 10).map((i) => el("tr", {},
      el("td", {}, clockTime(i.started_at)), el("td", {}, i.direction || ""), el("td", {}, i.queue || ""),
      el("td", {}, i.outcome || ""), el("td", {}, i.disposition || ""), el("td", {}, i.notes || "")))));
}

function casesList(cases) {
  if (!cases || cases.length === 0) return el("p", { class: "muted" }, "No open cases.");
  return el("ul", { class: "cases", dataset: { testid: "pop-cases" } },
    cases.map((c) => el("li", {}, `#${c.id} ${c.subject} (${c.status}, ${clockTime(c.opened_at)})`)));
}

function dialButton(number, ref) {
  return el("button", { type: "button", class: "small", click: () => act("Dial", () => api("POST", "/api/dial", ref ? { number, customer_ref: ref } : { number })) }, `Dial ${number}`);
}

function customerCard(customer, testid) {
  return el("div", { class: "card" },
    el("h3", { class: "customer-name", dataset: { testid } }, customer.name || "(no name)"),
    el("dl", { class: "facts" },
      el("dt", {}, "Ref"), el("dd", {}, customer.ref || ""),
      el("dt", {}, "Tier"), el("dd", {}, customer.tier || "–"),
      el("dt", {}, "Account"), el("dd", {}, customer.account || "–"),
      el("dt", {}, "Email"), el("dd", {}, customer.email || "–")),
    el("ul", { class: "phones" }, (customer.phones || []).map((p) => el("li", {}, `${p.number} (${p.kind}) `, dialButton(p.number, customer.ref)))));
}

function ivrBlock(ivr) {
  if (!ivr) return null;
  const vars = Object.entries(ivr.variables || {});
  return el("div", { class: "ivr" },
    el("h3", {}, `IVR${ivr.flow ? `: ${ivr.flow}` : ""}`),
    el("ol", { class: "path", dataset: { testid: "ivr-path" } }, (ivr.nodes || []).map((n) => el("li", {}, n))),
    el("p", { class: "muted" }, `Keys pressed: ${ivr.keys || "none"}`),
    el("dl", { class: "facts", dataset: { testid: "ivr-variables" } },
      vars.map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))])));
}

function quickCreate(pop) {
  const form = el("form", { class: "stack", dataset: { testid: "quick-create" }, submit: async (event) => {
    event.preventDefault();
    const body = { name: $("qc-name").value, phone: $("qc-phone").value };
    if ($("qc-account").value) body.account = $("qc-account").value;
    const created = await act("Create customer", () => api("POST", "/api/customers", body));
    if (created) {
      state.pop = { ...pop, customer: created };
      renderPop();
    }
  } },
    el("label", { for: "qc-name" }, "Name"), el("input", { id: "qc-name", required: true }),
    el("label", { for: "qc-phone" }, "Phone"), el("input", { id: "qc-phone", value: pop.number || "" }),
    el("label", { for: "qc-account" }, "Account"), el("input", { id: "qc-account" }),
    el("button", { type: "submit" }, "Create customer"));
  return el("div", { class: "card unknown" },
    el("h3", { class: "customer-name", dataset: { testid: "pop-customer-name" } }, "Unknown caller"), form);
}

function renderPop() {
  const pop = state.pop;
  if (!pop) {
    setChildren($("pop-body"), el("p", { class: "muted" }, "No call yet."));
    return;
  }
  setChildren($("pop-body"),
    el("p", { class: "pop-head" }, `${pop.number || "unknown number"} · ${pop.queue || ""} · ${clockTime(pop.at)}`),
    pop.customer ? customerCard(pop.customer, "pop-customer-name") : quickCreate(pop),
    flags(pop.insight),
    ivrBlock(pop.ivr),
    el("h3", {}, "Open cases"), casesList(pop.cases),
    historyTable(pop.history));
}

// ---- figures -----------------------------------------------------------------------------
function renderFigures() {
  const f = state.figures || {};
  const rows = [
    ["Answered", f.answered ?? "–"], ["Talk time", duration(f.talk_seconds)],
    ["Avg handle", duration(f.avg_handle_seconds)], ["Not ready", duration(f.not_ready_seconds)],
    ["Missing dispositions", f.dispositions_missing ?? "–"],
  ];
  setChildren($("figures"), rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

// ---- customer search and edit ------------------------------------------------------------
async function search(event) {
  event.preventDefault();
  const q = $("search-q").value.trim();
  const found = await act("Search", () => api("GET", `/api/customers?q=${encodeURIComponent(q)}`), { quiet: true });
  if (!found) return;
  setChildren($("search-results"), found.customers.length === 0 ? el("li", { class: "muted" }, "No match.") :
    found.customers.map((c) => el("li", {},
      el("button", { type: "button", class: "link", click: () => openCustomer(c.ref) }, `${c.name} · ${c.account || c.ref}`))));
}

const EDITABLE = ["name", "email", "account", "segment", "tier", "language", "notes"];

async function openCustomer(ref) {
  const record = await act("Open customer", () => api("GET", `/api/customers/${encodeURIComponent(ref)}`), { quiet: true });
  if (!record) return;
  const c = record.customer;
  const form = el("form", { class: "stack", dataset: { testid: "customer-edit" }, submit: async (event) => {
    event.preventDefault();
    const patch = {};
    for (const key of EDITABLE) {
      const value = $(`edit-${key}`).value;
      if (value !== (c[key] || "")) patch[key] = value;
    }
    if (Object.keys(patch).length === 0) return;
    if (await act("Save customer", () => api("PATCH", `/api/customers/${encodeURIComponent(ref)}`, patch))) openCustomer(ref);
  } },
    EDITABLE.map((key) => [
      el("label", { for: `edit-${key}` }, key[0].toUpperCase() + key.slice(1)),
      key === "notes" ? el("textarea", { id: `edit-${key}`, rows: 3 }) : el("input", { id: `edit-${key}` }),
    ]),
    el("button", { type: "submit" }, "Save customer"));
  setChildren($("customer-detail"), customerCard(c, "detail-customer-name"), flags(record.insight), form,
    el("h3", {}, "Open cases"), casesList(record.cases), historyTable(record.history));
  for (const key of EDITABLE) $(`edit-${key}`).value = c[key] || "";
}

// ---- live frames -------------------------------------------------------------------------
function reset() {
  state.agent = null;
  state.call = null;
  state.figures = null;
  renderAgent();
  renderCall();
  renderFigures();
}

function frame(item) {
  const data = item.data;
  if (item.type === "agent") {
    state.agent = data;
    if (data && data.call_id) state.wrapCallId = data.call_id;
    renderAgent();
  } else if (item.type === "call") {
    state.call = data;
    renderCall();
  } else if (item.type === "screen_pop") {
    state.pop = data;
    renderPop();
  } else if (item.type === "figures") {
    state.figures = data;
    renderFigures();
  }
}

function options(select, items) {
  setChildren(select, items.map(([value, label]) => el("option", { value }, label)));
}

async function main() {
  state.user = await whoami();
  if (!state.user.agent_id) {
    $("notice").textContent = "This user is not an agent.";
  }
  $("agent-name").textContent = state.user.display_name || state.user.username;
  try {
    state.config = await api("GET", "/api/console/config");
  } catch (err) {
    $("notice").textContent = `Configuration not loaded: ${err.message}`;
  }
  options($("reason-select"), state.config.not_ready_reasons.map((r) => [r, r]));
  options($("wrap-disposition"), [["", "Choose…"], ...state.config.dispositions.map((d) => [d.code, d.label])]);
  // From "logged out" the agent first logs in to the queues (on their configured phone).
  const loggedOut = () => !state.agent || state.agent.status === "logged_out";
  $("btn-ready").addEventListener("click", () => act("Ready", async () => {
    if (loggedOut()) await api("POST", agentPath("login"));
    return api("POST", agentPath("ready"));
  }));
  $("btn-not-ready").addEventListener("click", () => act("Not ready", async () => {
    if (loggedOut()) await api("POST", agentPath("login"));
    return api("POST", agentPath("not-ready"), { reason: $("reason-select").value });
  }));
  $("btn-end-wrap").addEventListener("click", () => act("End wrap-up", () => api("POST", agentPath("end-wrap-up"))));
  $("btn-agent-logout").addEventListener("click", () => act("Log out of the queue", () => api("POST", agentPath("logout"))));
  $("btn-sign-out").addEventListener("click", signOut);
  $("wrap-form").addEventListener("submit", (event) => { event.preventDefault(); saveWrap(false); });
  $("wrap-save-ready").addEventListener("click", () => saveWrap(true));
  $("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Dial", () => api("POST", "/api/dial", { number: $("dial-number").value.trim() }));
  });
  $("search-form").addEventListener("submit", search);
  renderAgent();
  renderCall();
  renderFigures();
  startTicker();
  new LiveSocket({ reset, frame }).start();
}

main().catch((err) => {
  if (err.status !== 401) $("notice").textContent = `Console failed to start: ${err.message}`;
});
