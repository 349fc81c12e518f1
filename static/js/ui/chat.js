// The conversations page: list (unread badges, presence dots), one open thread (history with
// scroll-back, typing, ✓ sent / ✓✓ read, edit, delete), a dialog to start a conversation.
// All user data goes in as text (common.el / textContent).

import { State } from "../switchboard.js";
import { combobox } from "./combobox.js";
import { api, bindConnectionBadge, createSocket, debounce, el, formatTime, Names, nameInto, pageData, toast } from "./common.js";

const page = pageData();
const me = page.user_id;
const socket = createSocket(page);
const names = new Names(page);
window.switchboard = socket; // handy in the console, and for the end-to-end tests

const TYPING_RESEND_MS = (page.limits.typing_resend_seconds || 3) * 1000;
const TYPING_EXPIRE_MS = (page.limits.typing_expire_seconds || 6) * 1000;
const UNREAD_PUSH_MAX = page.limits.unread_push_max_members || 100;

const $ = (id) => document.getElementById(id);
const ui = {
  root: $("chat"),
  list: $("conv-list"),
  empty: $("conv-empty"),
  thread: $("thread"),
  placeholder: $("thread-placeholder"),
  title: $("thread-title"),
  sub: $("thread-sub"),
  presence: $("thread-presence"),
  messages: $("messages"),
  messageList: $("message-list"),
  older: $("load-older"),
  typing: $("typing"),
  composer: $("composer"),
  input: $("composer-input"),
};

// -- state ----------------------------------------------------------------------------------

const conversations = new Map(); // id -> {id, kind, title, member_ids, unread, last_message, ...}
const unreadVersion = new Map(); // id -> version of the last `unread` event applied
const presence = new Map(); // user id -> {online, last_seen}
const typers = new Map(); // conversation id -> Map(user id -> timer)
const markers = new Map(); // conversation id -> Map(user id -> read seq)
let active = null; // {id, messages: Map(seq -> Message), hasMore, loading}
let lastTypingSent = 0;

// -- conversation list -------------------------------------------------------------------------

function others(conv) {
  return (conv.member_ids || []).filter((u) => u !== me);
}

function directPeer(conv) {
  return conv.kind === "direct" ? others(conv)[0] : undefined;
}

function convTitleInto(node, conv) {
  const peer = directPeer(conv);
  if (conv.kind === "direct" && peer !== undefined) return nameInto(node, names, peer);
  node.textContent = conv.title || "Group";
  return node;
}

function upsertConversation(raw) {
  const prev = conversations.get(raw.id) || {};
  const conv = { ...prev, ...raw };
  if (raw.members) conv.member_ids = raw.members.map((m) => m.user_id);
  conversations.set(conv.id, conv);
  if (raw.members) {
    const m = markers.get(conv.id) || new Map();
    for (const member of raw.members) m.set(member.user_id, Math.max(m.get(member.user_id) || 0, member.last_read_seq || 0));
    markers.set(conv.id, m);
  }
  if (typeof conv.last_seq === "number") socket.setCursor(conv.id, conv.last_seq);
  return conv;
}

function presenceOf(conv) {
  const peer = directPeer(conv);
  if (peer !== undefined) return presence.has(peer) ? (presence.get(peer).online ? "online" : "offline") : "unknown";
  const anyone = others(conv).some((u) => presence.get(u)?.online);
  return anyone ? "online" : "offline";
}

function renderList() {
  const sorted = [...conversations.values()].sort((a, b) => {
    const ta = a.last_message_at || a.last_message?.created_at || "";
    const tb = b.last_message_at || b.last_message?.created_at || "";
    return tb.localeCompare(ta) || b.id - a.id;
  });
  ui.empty.hidden = sorted.length > 0;
  const items = sorted.map((conv) => {
    const state = presenceOf(conv);
    const title = convTitleInto(el("span", { class: "conv-title" }), conv);
    const last = conv.last_message;
    const typing = typers.get(conv.id)?.size;
    const preview = typing ? "typing…" : last ? (last.deleted ? "Message deleted" : last.body) : "No messages yet";
    const unread = conv.unread || 0;
    const link = el(
      "a",
      {
        href: `/c/${conv.id}`,
        class: "conv-link",
        "aria-current": active?.id === conv.id ? "true" : null,
        dataset: { conversationId: conv.id },
        onclick: (ev) => {
          ev.preventDefault();
          openConversation(conv.id, true);
        },
      },
      el("span", {
        class: "presence-dot",
        dataset: { online: state },
        role: "img",
        "aria-label": state === "online" ? "online" : state === "offline" ? "offline" : "presence unknown",
      }),
      el("span", { class: "conv-main" }, title, el("span", { class: "conv-preview" + (typing ? " is-typing" : "") }, preview)),
      unread ? el("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
    );
    return el("li", { class: "conv-item", dataset: { conversationId: conv.id, presence: state, unread } }, link);
  });
  ui.list.replaceChildren(...items);
}

let listLoaded = false;

async function loadConversations() {
  const rows = await api("GET", "/api/conversations");
  listLoaded = true;
  const seen = new Set();
  for (const row of rows) {
    upsertConversation(row);
    seen.add(row.id);
  }
  for (const id of [...conversations.keys()]) if (!seen.has(id)) conversations.delete(id);
  renderList();
}

async function loadConversation(id) {
  try {
    const conv = upsertConversation(await api("GET", `/api/conversations/${id}`));
    renderList();
    return conv;
  } catch {
    return null;
  }
}

async function queryPresence() {
  const ids = new Set();
  for (const conv of conversations.values()) for (const u of others(conv)) ids.add(u);
  const list = [...ids].slice(0, 200);
  if (!list.length || !socket.isOpen) return;
  try {
    const reply = await socket.request("presence.query", { user_ids: list }, { queue: false });
    for (const p of reply.presence || []) presence.set(p.user_id, p);
    renderList();
    renderThreadHead();
  } catch {
    // Presence is decoration: the next connect asks again.
  }
}

// -- the open thread ------------------------------------------------------------------------------

function showThread(show) {
  ui.thread.hidden = !show;
  ui.placeholder.hidden = show;
  ui.root.dataset.view = show ? "thread" : "list";
}

function renderThreadHead() {
  if (!active) return;
  const conv = conversations.get(active.id);
  if (!conv) return;
  convTitleInto(ui.title, conv);
  const state = presenceOf(conv);
  ui.presence.dataset.online = state;
  const peer = directPeer(conv);
  if (peer !== undefined) {
    ui.sub.textContent = state === "online" ? "online" : state === "offline" ? "offline" : "";
  } else {
    const n = (conv.member_ids || []).length;
    const on = others(conv).filter((u) => presence.get(u)?.online).length;
    ui.sub.textContent = `${n} members, ${on} online`;
  }
}

async function openConversation(id, push) {
  id = Number(id);
  if (push && location.pathname !== `/c/${id}`) history.pushState({ id }, "", `/c/${id}`);
  if (active?.id !== id) {
    sendTypingStop();
    active = { id, messages: new Map(), hasMore: false, loading: false };
    ui.messageList.replaceChildren();
    ui.input.value = "";
  }
  showThread(true);
  if (!conversations.has(id)) await loadConversation(id);
  else loadConversation(id); // refresh members and read markers
  if (active?.id !== id) return;
  renderThreadHead();
  renderTyping();
  renderList();
  await loadLatest();
  renderPending();
  ui.input.focus();
}

function closeThread() {
  sendTypingStop();
  active = null;
  showThread(false);
  if (location.pathname !== "/") history.pushState({}, "", "/");
  renderList();
}

async function loadLatest() {
  if (!active) return;
  const id = active.id;
  try {
    const page = await api("GET", `/api/conversations/${id}/messages?limit=${pageSize()}`);
    if (active?.id !== id) return;
    if (active.messages.size === 0) active.hasMore = page.has_more;
    for (const m of page.messages) upsertMessage(m, { scroll: false });
    scrollToBottom();
    markRead();
  } catch (err) {
    if (active?.id === id) toast(`Could not load messages: ${err.message}`, "error");
  }
  updateOlderButton();
}

function pageSize() {
  return page.limits.history_page || 50;
}

async function loadOlder() {
  if (!active || active.loading || !active.hasMore) return;
  const id = active.id;
  const oldest = Math.min(...active.messages.keys());
  active.loading = true;
  const before = ui.messages.scrollHeight - ui.messages.scrollTop;
  try {
    const page = await api("GET", `/api/conversations/${id}/messages?before=${oldest}&limit=${pageSize()}`);
    if (active?.id !== id) return;
    active.hasMore = page.has_more;
    for (const m of page.messages) upsertMessage(m, { scroll: false });
    // Keep what the reader was looking at in place.
    ui.messages.scrollTop = ui.messages.scrollHeight - before;
  } catch (err) {
    toast(`Could not load older messages: ${err.message}`, "error");
  } finally {
    if (active) active.loading = false;
    updateOlderButton();
  }
}

function updateOlderButton() {
  ui.older.hidden = !(active && active.hasMore);
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function readStatus(msg) {
  const conv = conversations.get(msg.conversation_id);
  const m = markers.get(msg.conversation_id) || new Map();
  const rest = conv ? others(conv) : [];
  const readers = rest.filter((u) => (m.get(u) || 0) >= msg.seq).length;
  return { read: rest.length > 0 && readers === rest.length, readers, total: rest.length };
}

function statusNode(msg, pending, failed) {
  if (failed) return el("span", { class: "msg-status failed", role: "img", "aria-label": "Not sent" }, "!");
  if (pending) return el("span", { class: "msg-status pending", role: "img", "aria-label": "Sending" }, "🕓");
  const r = readStatus(msg);
  const label = r.read ? "Read" : r.total > 1 && r.readers ? `Sent, read by ${r.readers} of ${r.total}` : "Sent";
  return el("span", { class: "msg-status" + (r.read ? " read" : ""), role: "img", "aria-label": label, title: label }, r.read ? "✓✓" : "✓");
}

function messageNode(msg, { pending = false, failed = false } = {}) {
  const mine = msg.sender_id === me;
  const author = nameInto(el("span", { class: "msg-author" }), names, msg.sender_id);
  const body = el("div", { class: "msg-body" }, msg.deleted ? "Message deleted" : msg.body);
  const meta = el(
    "div",
    { class: "msg-meta" },
    author,
    " ",
    el("time", { datetime: msg.created_at || "" }, formatTime(msg.created_at)),
    msg.edited_at && !msg.deleted ? el("span", { class: "msg-edited" }, " (edited)") : null,
  );
  const li = el(
    "li",
    {
      class: "msg" + (mine ? " mine" : "") + (msg.deleted ? " deleted" : "") + (pending ? " pending" : "") + (failed ? " failed" : ""),
      dataset: {
        seq: msg.seq ?? "",
        id: msg.id ?? "",
        clientId: msg.client_id || "",
        sender: msg.sender_id ?? "",
        status: failed ? "failed" : pending ? "pending" : mine ? (readStatus(msg).read ? "read" : "sent") : "",
      },
    },
    meta,
    body,
  );
  if (mine) li.append(statusNode(msg, pending, failed));
  if (mine && !pending && !failed && !msg.deleted) li.append(actionsNode(msg));
  if (failed) {
    li.append(
      el(
        "div",
        { class: "msg-actions" },
        el("button", { type: "button", class: "link", onclick: () => socket.discard(msg.client_id) || li.remove() }, "Discard"),
      ),
    );
  }
  return li;
}

function actionsNode(msg) {
  return el(
    "div",
    { class: "msg-actions" },
    el("button", { type: "button", class: "link", "aria-label": "Edit message", onclick: (ev) => startEdit(msg, ev.target.closest("li")) }, "Edit"),
    el("button", { type: "button", class: "link", "aria-label": "Delete message", onclick: (ev) => confirmDelete(msg, ev.target.closest("li")) }, "Delete"),
  );
}

function startEdit(msg, li) {
  const input = el("input", { class: "edit-input", value: msg.body, "aria-label": "Edit message", maxlength: page.limits.message_max_chars });
  const form = el(
    "form",
    { class: "edit-form" },
    input,
    el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", class: "secondary", onclick: () => li.replaceWith(messageNode(msg)) }, "Cancel"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = input.value;
    if (!body.trim() || body === msg.body) {
      li.replaceWith(messageNode(msg));
      return;
    }
    try {
      const reply = await socket.request("message.edit", { message_id: msg.id, body });
      active?.messages.set(reply.message.seq, reply.message);
      li.replaceWith(messageNode(reply.message));
    } catch (err) {
      toast(`Could not edit: ${err.message}`, "error");
    }
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") li.replaceWith(messageNode(msg));
  });
  li.querySelector(".msg-body").replaceWith(form);
  li.querySelector(".msg-actions")?.remove();
  input.focus();
}

function confirmDelete(msg, li) {
  const actions = li.querySelector(".msg-actions");
  const restore = () => actions.replaceWith(actionsNode(msg));
  const box = el(
    "div",
    { class: "msg-actions confirm" },
    "Delete this message? ",
    el(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          try {
            const reply = await socket.request("message.delete", { message_id: msg.id });
            upsertMessage(reply.message, { scroll: false });
          } catch (err) {
            toast(`Could not delete: ${err.message}`, "error");
            restore();
          }
        },
      },
      "Delete",
    ),
    el("button", { type: "button", class: "secondary", onclick: restore }, "Keep"),
  );
  actions.replaceWith(box);
  box.querySelector("button").focus();
}

/** Show a stored message in the open thread: once per seq, replacing its pending bubble. */
function upsertMessage(msg, { scroll = true } = {}) {
  if (!active || msg.conversation_id !== active.id) return;
  const stick = scroll && nearBottom();
  active.messages.set(msg.seq, msg);
  const node = messageNode(msg);
  const existing =
    ui.messageList.querySelector(`li[data-seq="${msg.seq}"]`) ||
    (msg.client_id && msg.sender_id === me ? [...ui.messageList.querySelectorAll("li.pending, li.failed")].find((li) => li.dataset.clientId === msg.client_id) : null);
  if (existing) {
    if (existing.querySelector(".edit-form")) return; // do not wipe an edit in progress
    existing.replaceWith(node);
    if (existing.dataset.seq === "") placeStored(node);
  } else {
    placeStored(node);
  }
  if (stick) scrollToBottom();
}

function placeStored(node) {
  // Stored messages in seq order; pending ones (no seq yet) stay below them.
  const seq = Number(node.dataset.seq);
  let before = null;
  for (const li of ui.messageList.children) {
    if (li === node) continue;
    if (li.dataset.seq === "" || Number(li.dataset.seq) > seq) {
      before = li;
      break;
    }
  }
  ui.messageList.insertBefore(node, before);
}

function renderPending() {
  if (!active) return;
  const pend = socket.pendingMessages(active.id);
  const want = new Set(pend.map((p) => p.client_id));
  for (const li of ui.messageList.querySelectorAll("li.pending")) {
    if (!want.has(li.dataset.clientId)) li.remove();
  }
  for (const item of pend) {
    const sel = [...ui.messageList.querySelectorAll("li")].find((li) => li.dataset.clientId === item.client_id);
    if (sel) continue;
    ui.messageList.append(messageNode({ ...item, sender_id: me, seq: null, id: null, deleted: false, edited_at: null }, { pending: true }));
  }
}

function refreshStatuses(conversationId) {
  if (!active || active.id !== conversationId) return;
  for (const li of ui.messageList.querySelectorAll("li.mine")) {
    const msg = active.messages.get(Number(li.dataset.seq));
    if (!msg || li.classList.contains("pending")) continue;
    const status = readStatus(msg).read ? "read" : "sent";
    const node = statusNode(msg, false, false);
    const old = li.querySelector(".msg-status");
    if (li.dataset.status !== status || old?.getAttribute("aria-label") !== node.getAttribute("aria-label")) {
      li.dataset.status = status;
      old?.replaceWith(node);
    }
  }
}

// -- reading -------------------------------------------------------------------------------------

const markRead = debounce(async () => {
  if (!active || document.visibilityState !== "visible" || !socket.isOpen) return;
  const seqs = [...active.messages.keys()];
  if (!seqs.length) return;
  const top = Math.max(...seqs);
  const mine = markers.get(active.id)?.get(me) || 0;
  const conv = conversations.get(active.id);
  if (top <= mine && !(conv?.unread > 0)) return;
  try {
    const reply = await socket.request("read", { conversation_id: active.id, seq: top }, { queue: false });
    setMarker(reply.conversation_id, me, reply.seq);
    if (conv && conv.member_ids.length > UNREAD_PUSH_MAX) conv.unread = 0;
  } catch {
    // Retried on the next message or focus.
  }
}, 250);

function setMarker(conversationId, userId, seq) {
  const m = markers.get(conversationId) || new Map();
  if ((m.get(userId) || 0) < seq) m.set(userId, seq);
  markers.set(conversationId, m);
}

document.addEventListener("visibilitychange", () => markRead());
window.addEventListener("focus", () => markRead());

// -- typing --------------------------------------------------------------------------------------

function sendTypingStart() {
  if (!active || !socket.isOpen) return;
  const t = Date.now();
  if (t - lastTypingSent < TYPING_RESEND_MS) return;
  lastTypingSent = t;
  socket.notify("typing.start", { conversation_id: active.id });
}

function sendTypingStop() {
  if (!active || !lastTypingSent) return;
  lastTypingSent = 0;
  socket.notify("typing.stop", { conversation_id: active.id });
}

function setTyping(conversationId, userId, on) {
  const map = typers.get(conversationId) || new Map();
  clearTimeout(map.get(userId));
  if (on) {
    // A typist who goes silent (closed tab, lost network) stops showing after a while.
    map.set(userId, setTimeout(() => setTyping(conversationId, userId, false), TYPING_EXPIRE_MS));
  } else {
    map.delete(userId);
  }
  typers.set(conversationId, map);
  if (active?.id === conversationId) renderTyping();
  renderList();
}

function renderTyping() {
  const ids = active ? [...(typers.get(active.id)?.keys() || [])] : [];
  if (!ids.length) {
    ui.typing.replaceChildren();
    ui.typing.dataset.typing = "";
    return;
  }
  const who = ids.map((u) => names.now(u));
  const text = who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
  ui.typing.replaceChildren(el("span", { class: "typing-text" }, text));
  ui.typing.dataset.typing = ids.join(",");
  const unknown = ids.filter((u) => !names.known.has(u));
  if (unknown.length) {
    // Render again once the missing names are fetched (known afterwards: no loop).
    Promise.all(unknown.map((u) => names.get(u))).then(() => {
      if (ui.typing.dataset.typing === ids.join(",") && unknown.every((u) => names.known.has(u))) renderTyping();
    });
  }
}

// -- composer ------------------------------------------------------------------------------------

ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!active) return;
  const body = ui.input.value;
  if (!body.trim()) return;
  ui.input.value = "";
  autosize();
  sendTypingStop();
  const cid = active.id;
  const { done } = socket.send(cid, body);
  renderPending();
  scrollToBottom();
  done.then(
    (msg) => {
      bumpConversation(msg);
      upsertMessage(msg);
    },
    (err) => {
      if (err.code === "discarded") return;
      toast(`Message not sent: ${err.message}`, "error");
    },
  );
});

ui.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.input.addEventListener("input", () => {
  autosize();
  if (ui.input.value.trim()) sendTypingStart();
  else sendTypingStop();
});

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = Math.min(ui.input.scrollHeight, 160) + "px";
}

ui.older.addEventListener("click", loadOlder);
ui.messages.addEventListener("scroll", () => {
  if (ui.messages.scrollTop < 40) loadOlder();
});
$("thread-back").addEventListener("click", closeThread);
window.addEventListener("popstate", () => {
  const m = location.pathname.match(/^\/c\/(\d+)$/);
  if (m) openConversation(Number(m[1]), false);
  else closeThread();
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && active && document.activeElement === ui.input && !ui.input.value) closeThread();
});

// -- events from the server ------------------------------------------------------------------------

function bumpConversation(msg) {
  const conv = conversations.get(msg.conversation_id);
  if (!conv) return;
  if (!conv.last_message || conv.last_message.seq <= msg.seq) {
    conv.last_message = msg;
    conv.last_message_at = msg.created_at;
  }
  conv.last_seq = Math.max(conv.last_seq || 0, msg.seq);
}

socket.on("message.new", async (msg) => {
  if (!conversations.has(msg.conversation_id)) await loadConversation(msg.conversation_id);
  const conv = conversations.get(msg.conversation_id);
  bumpConversation(msg);
  if (msg.sender_id !== null) setTyping(msg.conversation_id, msg.sender_id, false);
  const reading = active?.id === msg.conversation_id;
  if (reading) {
    upsertMessage(msg);
    markRead();
  } else if (conv && msg.sender_id !== me && conv.member_ids.length > UNREAD_PUSH_MAX) {
    conv.unread = (conv.unread || 0) + 1; // big groups get no exact unread pushes
  }
  renderList();
});

socket.on("message.updated", (msg) => {
  const conv = conversations.get(msg.conversation_id);
  if (conv?.last_message?.id === msg.id) conv.last_message = msg;
  upsertMessage(msg, { scroll: false });
  renderList();
});

socket.on("conversation.joined", async (data) => {
  await loadConversation(data.conversation_id);
  queryPresence();
});

socket.on("conversation.left", (data) => {
  conversations.delete(data.conversation_id);
  if (active?.id === data.conversation_id) {
    toast("You are no longer in that conversation.");
    closeThread();
  }
  renderList();
});

socket.on("conversation.members", (data) => {
  loadConversation(data.conversation_id).then(() => renderThreadHead());
});

socket.on("presence", (p) => {
  // Pushes of several processes may cross: the newest last_seen wins (docs/protocol.md).
  const known = presence.get(p.user_id);
  if (known?.last_seen && p.last_seen && p.last_seen < known.last_seen) return;
  presence.set(p.user_id, p);
  renderList();
  renderThreadHead();
});

socket.on("typing", (t) => {
  if (t.user_id !== me) setTyping(t.conversation_id, t.user_id, t.typing);
});

socket.on("read", (r) => {
  setMarker(r.conversation_id, r.user_id, r.seq);
  refreshStatuses(r.conversation_id);
});

socket.on("unread", async (u) => {
  // Pushed before this page knew the conversation (still loading after `conversation.joined`):
  // load it, then apply the count (a single conversation's snapshot carries none).
  if (!conversations.has(u.conversation_id)) await loadConversation(u.conversation_id);
  const conv = conversations.get(u.conversation_id);
  if (!conv) return;
  // Pushes of several server processes may cross: apply only newer versions.
  if (typeof u.version === "number") {
    if ((unreadVersion.get(u.conversation_id) ?? -Infinity) > u.version) return;
    unreadVersion.set(u.conversation_id, u.version);
  }
  conv.unread = active?.id === u.conversation_id && document.visibilityState === "visible" ? 0 : u.unread;
  if (active?.id === u.conversation_id && u.unread > 0) markRead();
  renderList();
});

socket.onGap(async ({ conversation_id, after_seq, latest_seq }) => {
  // More was missed than the server replays: page forward over REST.
  if (active?.id !== conversation_id) return;
  let after = after_seq;
  while (active?.id === conversation_id && after < latest_seq) {
    const page = await api("GET", `/api/conversations/${conversation_id}/messages?after=${after}&limit=200`);
    for (const m of page.messages) upsertMessage(m);
    if (!page.messages.length) break;
    after = page.messages[page.messages.length - 1].seq;
  }
});

socket.onOutbox(() => renderPending());

socket.onOpen(async ({ reconnect }) => {
  unreadVersion.clear(); // versions restart with the connection
  queryPresence();
  if (reconnect || !listLoaded) {
    // Joined while away, unread counts, and edits/deletes (not replayed by sync).
    await loadConversations().catch(() => {});
    if (active) loadLatest();
  }
  markRead();
});

// -- new conversation dialog -----------------------------------------------------------------

const dlg = {
  dialog: $("new-conv"),
  form: $("new-conv-form"),
  search: $("new-conv-search"),
  results: $("new-conv-results"),
  picked: $("new-conv-picked"),
  titleField: $("new-conv-title-field"),
  title: $("new-conv-group-title"),
  error: $("new-conv-error"),
};
let picked = new Map(); // user id -> name

function dialogKind() {
  return dlg.form.querySelector("input[name=kind]:checked").value;
}

function renderPicked() {
  dlg.picked.replaceChildren(
    ...[...picked].map(([uid, name]) =>
      el(
        "li",
        { class: "chip" },
        name,
        el("button", { type: "button", class: "link", "aria-label": `Remove ${name}`, onclick: () => (picked.delete(uid), renderPicked()) }, "×"),
      ),
    ),
  );
}

function pick(hit) {
  const name = hit.display_name || hit.username;
  names.seed(hit.user_id, name);
  if (dialogKind() === "direct") picked = new Map();
  picked.set(hit.user_id, name);
  dlg.search.value = "";
  renderPicked();
  dlg.search.focus();
}

const people = combobox({
  input: dlg.search,
  listbox: dlg.results,
  fetch: async (q) => (await api("GET", `/api/users?q=${encodeURIComponent(q)}`)).filter((h) => !picked.has(h.user_id)),
  label: (h) => [h.display_name || h.username, h.display_name && h.display_name !== h.username ? el("small", { class: "muted" }, ` @${h.username}`) : null],
  data: (h) => ({ userId: h.user_id, username: h.username }),
  onPick: pick,
  onEnterText: (text) => text.trim() !== "", // Enter on an empty search box submits
});
for (const radio of dlg.form.querySelectorAll("input[name=kind]")) {
  radio.addEventListener("change", () => {
    dlg.titleField.hidden = dialogKind() !== "group";
    if (dialogKind() === "direct" && picked.size > 1) {
      picked = new Map([[...picked][0]]);
      renderPicked();
    }
  });
}

$("new-conv-open").addEventListener("click", () => {
  picked = new Map();
  dlg.error.textContent = "";
  dlg.search.value = "";
  dlg.title.value = "";
  renderPicked();
  people.close();
  dlg.dialog.showModal();
  dlg.search.focus();
});
$("new-conv-cancel").addEventListener("click", () => dlg.dialog.close());

dlg.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  dlg.error.textContent = "";
  const kind = dialogKind();
  const ids = [...picked.keys()];
  if (!ids.length) {
    dlg.error.textContent = "Choose at least one person.";
    return;
  }
  const body = kind === "direct" ? { kind, user_id: ids[0] } : { kind, title: dlg.title.value.trim() || "Group", member_ids: ids };
  try {
    const conv = upsertConversation(await api("POST", "/api/conversations", body));
    dlg.dialog.close();
    renderList();
    queryPresence();
    openConversation(conv.id, true);
  } catch (err) {
    dlg.error.textContent = err.message;
  }
});

// -- start ----------------------------------------------------------------------------------------

bindConnectionBadge(socket);
socket.onState((state) => {
  ui.root.dataset.connection = state;
  if (state !== State.OPEN) {
    // Nobody is shown typing from a connection we no longer hear.
    for (const [cid, map] of typers) for (const uid of [...map.keys()]) setTyping(cid, uid, false);
  }
});

(async function start() {
  showThread(false);
  try {
    await loadConversations(); // sets the cursors `sync` resumes from
  } catch (err) {
    toast(`Could not load conversations: ${err.message}`, "error");
  }
  socket.connect();
  const initial = page.conversation_id || location.pathname.match(/^\/c\/(\d+)$/)?.[1];
  if (initial) openConversation(Number(initial), false);
})();
