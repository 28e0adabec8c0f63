// Admin page: the loaded configuration (secrets already "***" from the server), reload,
// and user management.
import { $, act, api, el, setChildren, signOut, whoami } from "./common.js";

const ROLES = ["agent", "supervisor", "admin"];

async function loadConfig() {
  const config = await act("Load configuration", () => api("GET", "/api/admin/config"), { quiet: true });
  if (config) $("config").textContent = JSON.stringify(config, null, 2);
}

async function reload() {
  const result = await act("Reload", () => api("POST", "/api/admin/reload"));
  if (!result) return;
  const lines = Object.entries(result).map(([part, r]) =>
    `${part}: ${r.ok ? "ok" : "FAILED"}${r.version ? ` (version ${r.version})` : ""}${r.error ? ` – ${r.error}` : ""}`);
  $("reload-result").textContent = lines.join("\n");
  $("reload-result").className = Object.values(result).every((r) => r.ok) ? "result ok" : "result error";
  await loadConfig();
}

function userRow(user) {
  const path = `/api/admin/users/${encodeURIComponent(user.username)}`;
  const patch = (label, body) => async () => {
    if (await act(label, () => api("PATCH", path, body))) loadUsers();
  };
  const role = el("select", { "aria-label": `Role of ${user.username}` },
    ROLES.map((r) => el("option", { value: r, selected: r === user.role }, r)));
  const password = el("input", { type: "password", autocomplete: "new-password", "aria-label": `New password for ${user.username}` });
  return el("tr", { dataset: { user: user.username } },
    el("th", { scope: "row" }, user.username), el("td", {}, user.display_name || ""),
    el("td", {}, user.role), el("td", {}, user.agent_id || "–"),
    el("td", {}, user.disabled ? "disabled" : "active"),
    el("td", {}, el("div", { class: "actions compact" },
      el("button", { type: "button", click: patch(user.disabled ? "Enable" : "Disable", { disabled: !user.disabled }) }, user.disabled ? "Enable" : "Disable"),
      role,
      el("button", { type: "button", click: () => patch("Change role", { role: role.value })() }, "Set role"),
      password,
      el("button", { type: "button", click: () => {
        if (password.value) patch("Reset password", { password: password.value })();
      } }, "Reset password"))));
}

async function loadUsers() {
  const data = await act("Load users", () => api("GET", "/api/admin/users"), { quiet: true });
  if (data) setChildren($("user-rows"), data.users.map(userRow));
}

async function addUser(event) {
  event.preventDefault();
  const body = { username: $("new-username").value.trim(), password: $("new-password").value, role: $("new-role").value };
  if ($("new-display").value.trim()) body.display_name = $("new-display").value.trim();
  if ($("new-agent").value.trim()) body.agent_id = $("new-agent").value.trim();
  if (await act("Add user", () => api("POST", "/api/admin/users", body))) {
    event.target.reset();
    loadUsers();
  }
}

async function main() {
  const user = await whoami();
  if (user.role !== "admin") {
    window.location.assign(user.role === "agent" ? "/agent" : "/supervisor");
    return;
  }
  $("user-name").textContent = user.display_name || user.username;
  $("btn-sign-out").addEventListener("click", signOut);
  $("btn-reload").addEventListener("click", reload);
  $("btn-refresh").addEventListener("click", loadConfig);
  $("add-user").addEventListener("submit", addUser);
  await Promise.all([loadConfig(), loadUsers()]);
}

main().catch((err) => {
  if (err.status !== 401) $("notice").textContent = `Admin page failed to start: ${err.message}`;
});
