// Sign-in page: POST /api/login, then "/", which the server redirects to the page of the
// user's role (agent_console.pages.page_for_role: one rule). A ?next= is deliberately
// ignored: following it would be an open redirect.
import { $, api } from "./common.js";

async function submit(event) {
  event.preventDefault();
  const error = $("login-error");
  error.textContent = "";
  const button = event.target.querySelector("button");
  button.disabled = true;
  try {
    await api("POST", "/api/login", {
      username: $("username").value,
      password: $("password").value,
    });
    window.location.assign("/");
  } catch (err) {
    error.textContent = err.status === 401 ? "Wrong user name or password." : err.message;
    $("password").value = "";
    $("password").focus();
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", submit);
