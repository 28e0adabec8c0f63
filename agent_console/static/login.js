// Sign-in page: POST /api/login, then go to the page of the user's role. A ?next= is
// deliberately ignored: following it would be an open redirect.
import { $, api, setCsrf } from "./common.js";

const PAGES = { agent: "/agent", supervisor: "/supervisor", admin: "/supervisor" };

async function submit(event) {
  event.preventDefault();
  const error = $("login-error");
  error.textContent = "";
  const button = event.target.querySelector("button");
  button.disabled = true;
  try {
    const login = await api("POST", "/api/login", {
      username: $("username").value,
      password: $("password").value,
    });
    setCsrf(login.csrf);
    const me = await api("GET", "/api/me");
    window.location.assign(PAGES[me.user.role] || "/login");
  } catch (err) {
    error.textContent = err.status === 401 ? "Wrong user name or password." : err.message;
    $("password").value = "";
    $("password").focus();
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", submit);
