// Shared helpers of the console pages: DOM building (text only), the API fetch wrapper,
// the live websocket with reconnect/heartbeat, and the server-clock correction.
// Every value from the server is put in the DOM with textContent: caller names and CRM
// fields are untrusted input (see agent_console/pages.py for the CSP that backs this up).

let csrf = "";

// What each ACD agent status is called on every page.
export const STATUS_LABELS = {
  logged_out: "Logged out", not_ready: "Not ready", ready: "Ready", reserved: "Reserved",
  ringing: "Ringing", on_call: "On call", on_hold: "On hold", wrap_up: "Wrap-up",
};

// A refused request: the server answers {"error": machine id, "detail": human text}; the
// pages show the detail and may branch on the id (agent_console/http.py lists them).
export class ApiError extends Error {
  constructor(status, message, error = null) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

// el("button", {class: "x", type: "button", dataset: {testid: "y"}}, "text", child...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "click") node.addEventListener("click", value);
    else if (key === "submit") node.addEventListener("submit", value);
    else if (key === "change") node.addEventListener("change", value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function setChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

export function $(id) {
  return document.getElementById(id);
}

export function goLogin() {
  window.location.assign("/login");
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && path !== "/api/login") {
    goLogin();
    throw new ApiError(401, "not logged in", "not_logged_in");
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) {
    const detail = data && (data.detail || data.error);
    throw new ApiError(response.status, detail || `HTTP ${response.status}`, data && data.error);
  }
  return data;
}

export function setCsrf(token) {
  csrf = token;
}

// The logged-in user (and the CSRF token), or off to /login.
export async function whoami() {
  const me = await api("GET", "/api/me");
  setCsrf(me.csrf);
  return me.user;
}

export async function signOut() {
  try {
    await api("POST", "/api/logout");
  } finally {
    goLogin();
  }
}

// Server time: the clock frames give the server's now; times shown count from it so a
// browser with a wrong clock still shows the right "time in state".
let clockOffsetMs = 0;
export function setServerClock(epochSeconds) {
  clockOffsetMs = epochSeconds * 1000 - Date.now();
}
export function serverNow() {
  return (Date.now() + clockOffsetMs) / 1000;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

export function since(epochSeconds) {
  return epochSeconds ? duration(serverNow() - epochSeconds) : "–";
}

export function clockTime(epochSeconds) {
  if (!epochSeconds) return "–";
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

// A status line for action results ("Saved", or the server's error), announced politely.
export function notify(message, isError = false) {
  const box = $("notice");
  if (!box) return;
  box.textContent = message;
  box.className = isError ? "notice error" : "notice";
}

// Run an API call for a button; its outcome is shown in the notice line (errors always;
// success unless quiet, e.g. for loads the user did not ask for as an action).
export async function act(label, fn, { quiet = false } = {}) {
  try {
    const result = await fn();
    if (!quiet) notify(`${label}: done`);
    return result;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    notify(`${label}: ${err.message}`, true);
    return undefined;
  }
}

// The live websocket. Contract: first frame is a snapshot (reset state, apply items in order),
// then frames with seq > snapshot's. Ping every 15 s; no frame within 30 s of a ping -> the
// connection is dead (a laptop that slept, a proxy that dropped it): reconnect. Backoff 0.5 s
// doubling to 10 s, plus jitter so a restarted server is not hit by every page at once.
const PING_EVERY_MS = 15000;
const DEAD_AFTER_MS = 30000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;

export class LiveSocket {
  constructor({ reset, frame }) {
    this.resetState = reset;
    this.applyFrame = frame;
    this.ws = null;
    this.attempt = 0;
    this.seq = null;
    this.retryTimer = null;
    this.deadTimer = null;
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.wake();
    });
    window.addEventListener("online", () => this.wake());
  }

  start() {
    this.connect();
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/api/ws`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setConnected(false);
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      if (this.ws === ws) this.receive(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws === ws) this.closed(event.code);
    });
  }

  // A tab back from the background or a network back: check the line now, not in 15 s.
  wake() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ping();
    else if (this.retryTimer !== null) this.connect();
  }

  ping() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: "ping" }));
    if (this.deadTimer === null) {
      this.deadTimer = setTimeout(() => {
        this.deadTimer = null;
        if (this.ws === ws) this.drop();
      }, DEAD_AFTER_MS);
    }
  }

  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.closed(1006);
  }

  closed(code) {
    clearTimeout(this.deadTimer);
    this.deadTimer = null;
    this.ws = null;
    this.setConnected(false);
    if (code === 4401) {
      goLogin();
      return;
    }
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base + Math.random() * base * 0.3;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(raw) {
    clearTimeout(this.deadTimer);
    this.deadTimer = null;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.type === "pong") return;
    if (frame.type === "snapshot") {
      this.attempt = 0;
      this.resetState();
      for (const item of frame.data || []) this.apply(item);
      this.seq = frame.seq;
      this.setConnected(true);
      return;
    }
    if (frame.seq !== null && frame.seq !== undefined) {
      if (this.seq !== null && frame.seq <= this.seq) return; // already in the snapshot
      this.seq = frame.seq;
    }
    this.apply(frame);
    if (this.seq !== null) document.body.dataset.seq = String(this.seq);
  }

  apply(item) {
    if (item.type === "clock") {
      setServerClock(item.data);
      return;
    }
    try {
      this.applyFrame(item);
    } catch (err) {
      console.error("frame not applied", item.type, err);
    }
  }

  setConnected(connected) {
    document.body.dataset.connected = connected ? "true" : "false";
    if (this.seq !== null) document.body.dataset.seq = String(this.seq);
    const banner = $("connection");
    if (banner) {
      banner.textContent = connected ? "Live" : "Reconnecting…";
      banner.className = connected ? "connection live" : "connection down";
    }
  }
}

// Re-render the elements carrying data-since every second (time in state, waits).
export function startTicker() {
  setInterval(() => {
    for (const node of document.querySelectorAll("[data-since]")) {
      node.textContent = since(Number(node.dataset.since));
    }
  }, 1000);
}

export function sinceNode(epochSeconds, attrs = {}) {
  const node = el("span", { ...attrs, class: `timer ${attrs.class || ""}`.trim() });
  if (epochSeconds) node.dataset.since = String(epochSeconds);
  node.textContent = since(epochSeconds);
  return node;
}
