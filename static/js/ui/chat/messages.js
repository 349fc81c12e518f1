// The messages of the open thread (#message-list): one bubble per stored message in seq order,
// pending and failed sends below them, ✓ sent / ✓✓ read, and editing and deleting my own
// messages in place (Escape cancels an edit, a delete asks first). Also the scroll position
// of #messages.

import { el, nameInto, toast } from "../common.js";
import { dayKey, formatDay, formatFull, formatMessageTime } from "../dates.js";
import { me, names, page, socket, ui } from "./page.js";
import { conversationGet, markerOf, threadGet, threadMessageSet } from "./state.js";
import { others } from "./list.js";

export function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

export function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function readStatus(msg) {
  const conv = conversationGet(msg.conversation_id);
  const rest = conv ? others(conv) : [];
  const readers = rest.filter((u) => markerOf(msg.conversation_id, u) >= msg.seq).length;
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
    el("time", { datetime: msg.created_at || "", title: formatFull(msg.created_at) }, formatMessageTime(msg.created_at)),
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
        day: dayKey(msg.created_at),
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
      threadMessageSet(reply.message);
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

/** Give the first message of each day in the thread a separator naming the day (Today,
 * Yesterday, the date). It sits inside that message's item, so the list holds messages only. */
export function markDays() {
  let previous = "";
  for (const li of ui.messageList.children) {
    const day = li.dataset.day || "";
    const sep = li.querySelector(":scope > .day-sep");
    const wanted = day !== "" && day !== previous;
    if (wanted) {
      const iso = li.querySelector("time")?.getAttribute("datetime") || "";
      const text = formatDay(iso);
      if (!sep) li.prepend(el("p", { class: "day-sep" }, el("time", { datetime: day }, text)));
      else if (sep.textContent !== text) sep.replaceChildren(el("time", { datetime: day }, text));
    } else if (sep) {
      sep.remove();
    }
    if (day) previous = day;
  }
}

/** Show a stored message in the open thread: once per seq, replacing its pending bubble. */
export function upsertMessage(msg, { scroll = true } = {}) {
  const active = threadGet();
  if (!active || msg.conversation_id !== active.id) return;
  const stick = scroll && nearBottom();
  threadMessageSet(msg);
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

/** Draw the outbox's messages of the open thread as pending bubbles (and drop sent ones). */
export function renderPending() {
  const active = threadGet();
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

/** Someone's read marker moved: redraw ✓ / ✓✓ of my messages in the open thread. */
export function refreshStatuses(conversationId) {
  const active = threadGet();
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
