// Helpers shared by the app's pages. User data is only ever put into the page as text
// (textContent / text nodes / attribute values): never innerHTML (no XSS by construction).

import { Socket, State } from "../switchboard.js";

/** Build an element: el("li", {class: "x", dataset: {seq: 3}, onclick: fn}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "disabled" || k === "checked") node[k] = Boolean(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** The data a page's template handed over with json_script("page-data"). */
export function pageData() {
  const node = document.getElementById("page-data");
  return node ? JSON.parse(node.textContent) : {};
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

export class ApiError extends Error {
  constructor(status, body) {
    // The API's one error body is {code, message} (docs/protocol.md, "Errors").
    const message = body?.error?.message || body?.message || body?.detail || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.code = body?.error?.code || body?.code || (status === 0 ? "network" : "http_" + status);
  }
}

/** Call the REST API with the session cookie (and the CSRF token on writes). */
export async function api(method, url, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = cookie("csrftoken") || document.querySelector("meta[name=csrf-token]")?.content || "";
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** One socket per page, with the outbox persisted per user. */
export function createSocket(page) {
  return new Socket({ outboxKey: `switchboard.outbox.${page.user_id}` });
}

const STATE_TEXT = {
  [State.CONNECTING]: "Connecting…",
  [State.OPEN]: "Connected",
  [State.RECONNECTING]: "Reconnecting…",
  [State.OFFLINE]: "Offline",
  [State.CLOSED]: "Disconnected",
  [State.UNAUTHORIZED]: "Signed out: log in again",
  [State.FORBIDDEN]: "Connection refused (origin)",
  [State.SUSPENDED]: "Account suspended",
};

/** Keep the connection badge (#conn) in step with the socket's state. */
export function bindConnectionBadge(socket, root = document.getElementById("conn")) {
  if (!root) return;
  const text = root.querySelector(".conn-text");
  const retry = root.querySelector("button");
  const login = root.querySelector("a");
  const show = (state) => {
    root.dataset.state = state;
    text.textContent = STATE_TEXT[state] || state;
    if (retry) retry.hidden = !(state === State.RECONNECTING || state === State.OFFLINE);
    if (login) login.hidden = state !== State.UNAUTHORIZED;
  };
  retry?.addEventListener("click", () => socket.reconnectNow());
  socket.onState(show);
  show(socket.state === State.CLOSED ? State.CONNECTING : socket.state);
}

/** Display names by user id, fetched once per page from the public profile. */
export class Names {
  constructor(me) {
    this.me = me;
    this.cache = new Map([[me.user_id, Promise.resolve(me.display_name || me.username)]]);
    this.known = new Map([[me.user_id, me.display_name || me.username]]);
  }
  seed(userId, name) {
    if (!name) return;
    this.known.set(userId, name);
    this.cache.set(userId, Promise.resolve(name));
  }
  get(userId) {
    if (userId === null || userId === undefined) return Promise.resolve("(deleted user)");
    if (!this.cache.has(userId)) {
      const p = api("GET", `/api/users/${userId}/profile`).then(
        (p) => {
          const name = p.display_name || p.username;
          this.known.set(userId, name);
          return name;
        },
        () => `user ${userId}`,
      );
      this.cache.set(userId, p);
    }
    return this.cache.get(userId);
  }
  now(userId) {
    return this.known.get(userId) || `user ${userId}`;
  }
}

/** Put a promised name into a node as text once it is known. */
export function nameInto(node, names, userId) {
  node.textContent = names.now(userId);
  names.get(userId).then((n) => {
    node.textContent = n;
  });
  return node;
}

export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatElapsed(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Announce something to screen readers (and show it) in the page's #toast region. */
export function toast(message, kind = "info") {
  const region = document.getElementById("toast");
  if (!region) return;
  const item = el("div", { class: `toast ${kind}` }, message);
  region.append(item);
  setTimeout(() => item.remove(), 6000);
}

/** Debounce: run fn after `ms` of quiet. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
