// What every dashboard page shares (window.Backline): el() builds DOM nodes, api() fetches the hub's JSON
// (a POST carries the session's CSRF token, X-CSRF-Token; a 401 goes to the sign-in page), postJson() sends
// a JSON body, start() loads the session (/dashboard/api/session), names the operator, wires sign-out and
// marks the current page in the navigation (Queue / Analytics / Reviews).
(() => {
  "use strict";
  let session = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  async function api(path, options) {
    const request = { credentials: "same-origin", ...options };
    if ((request.method || "GET").toUpperCase() !== "GET") {
      request.headers = { ...(request.headers || {}), "X-CSRF-Token": session ? session.csrf_token : "" };
    }
    const response = await fetch(path, request);
    if (response.status === 401) {
      location.href = "/dashboard/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("signed out");
    }
    return response;
  }

  // POST a JSON body; the parsed answer, or an Error with the hub's message.
  async function postJson(path, body) {
    const response = await api(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const result = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(result.error || response.statusText);
    return result;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "";
  }

  function label(key) {
    return String(key || "").replace(/_/g, " ");
  }

  // Sign out: a POST with the token, then the sign-in page.
  function signOut(event) {
    event.preventDefault();
    api("/dashboard/logout", { method: "POST" })
      .catch(() => null)
      .then(() => { location.href = "/dashboard/login"; });
  }

  async function start() {
    const logout = document.getElementById("logout");
    if (logout) logout.addEventListener("submit", signOut);
    session = await (await api("/dashboard/api/session")).json();
    document.getElementById("operator").textContent = `${session.operator.name}`;
    const section = location.pathname.startsWith("/dashboard/analytics") ? "analytics"
      : location.pathname.startsWith("/dashboard/reviews") ? "reviews" : "queue";
    for (const link of document.querySelectorAll(".nav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    }
    return session;
  }

  window.Backline = { el, api, postJson, when, label, start, get session() { return session; } };
})();
