// The conversation list: loading conversations over REST into the store, asking who of their
// members is online, and drawing #conv-list (most recent first, unread badge, presence dot,
// "typing…" preview). Also the small reads of a conversation that the thread shares (its other
// members, its direct peer, its title, its presence). Draws on the "list" topic.

import { api, el, nameInto, toast } from "../common.js";
import { formatFull, formatListTime } from "../dates.js";
import { me, names, socket, ui } from "./page.js";
import {
  changed,
  conversationPut,
  conversationUnreadSet,
  conversationsAll,
  conversationsKeep,
  listLoadedSet,
  presenceGet,
  presenceHas,
  presenceSet,
  requestPut,
  requestRemove,
  requestsAll,
  requestsKeep,
  threadGet,
  typistsIn,
} from "./state.js";

/** The members other than me. */
export function others(conv) {
  return (conv.member_ids || []).filter((u) => u !== me);
}

/** The other person of a direct conversation (undefined for a group). */
export function directPeer(conv) {
  return conv.kind === "direct" ? others(conv)[0] : undefined;
}

export function convTitleInto(node, conv) {
  const peer = directPeer(conv);
  if (conv.kind === "direct" && peer !== undefined) return nameInto(node, names, peer);
  node.textContent = conv.title || "Group";
  return node;
}

/** "online", "offline" or (a direct peer never heard of) "unknown". */
export function presenceOf(conv) {
  const peer = directPeer(conv);
  if (peer !== undefined) return presenceHas(peer) ? (presenceGet(peer).online ? "online" : "offline") : "unknown";
  const anyone = others(conv).some((u) => presenceGet(u)?.online);
  return anyone ? "online" : "offline";
}

/** Store a REST snapshot of a conversation; its last seq is where `sync` resumes.
 *
 * Not for the open thread: its cursor is what the socket delivered to it. A snapshot read
 * after a message that is still on its way over the socket would move the cursor past that
 * message, and the socket would then drop it as already delivered, while the thread's own
 * page of history, read a moment earlier, lacked it. */
export function upsertConversation(raw) {
  const conv = conversationPut(raw);
  if (typeof conv.last_seq === "number") {
    if (threadGet()?.id !== conv.id) socket.setCursor(conv.id, conv.last_seq, conv.last_change_seq);
    // The snapshot's unread count covers its messages up to last_seq.
    if (typeof raw.unread === "number") conversationUnreadSet(conv, raw.unread, conv.last_seq);
  }
  return conv;
}

/** Draw the list; a click on a conversation calls open(id, true). */
export function renderList(open) {
  const sorted = conversationsAll().sort((a, b) => {
    const ta = a.last_message_at || a.last_message?.created_at || "";
    const tb = b.last_message_at || b.last_message?.created_at || "";
    return tb.localeCompare(ta) || b.id - a.id;
  });
  ui.empty.hidden = sorted.length > 0;
  const active = threadGet();
  const items = sorted.map((conv) => {
    const state = presenceOf(conv);
    const title = convTitleInto(el("span", { class: "conv-title" }), conv);
    const last = conv.last_message;
    const typing = typistsIn(conv.id).length;
    const preview = typing ? "typing…" : last ? (last.deleted ? "Message deleted" : last.body) : "No messages yet";
    const unread = conv.unread || 0;
    const at = conv.last_message_at || last?.created_at || "";
    const link = el(
      "a",
      {
        href: `/c/${conv.id}`,
        class: "conv-link",
        "aria-current": active?.id === conv.id ? "true" : null,
        dataset: { conversationId: conv.id },
        onclick: (ev) => {
          ev.preventDefault();
          open(conv.id, true);
        },
      },
      el("span", {
        class: "presence-dot",
        dataset: { online: state },
        role: "img",
        "aria-label": state === "online" ? "online" : state === "offline" ? "offline" : "presence unknown",
      }),
      el("span", { class: "conv-main" }, title, el("span", { class: "conv-preview" + (typing ? " is-typing" : "") }, preview)),
      at ? el("time", { class: "conv-time", datetime: at, title: formatFull(at) }, formatListTime(at)) : null,
      unread ? el("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
    );
    return el("li", { class: "conv-item", dataset: { conversationId: conv.id, presence: state, unread } }, link);
  });
  ui.list.replaceChildren(...items);
}

/** Load the whole list (and forget conversations no longer in it). */
export async function loadConversations() {
  const rows = await api("GET", "/api/conversations");
  listLoadedSet();
  const seen = new Set();
  for (const row of rows) {
    upsertConversation(row);
    seen.add(row.id);
  }
  conversationsKeep(seen);
  changed("list");
}

/** Load the requests and invitations waiting for me (pending memberships). */
export async function loadRequests() {
  const rows = await api("GET", "/api/conversations?state=pending");
  const seen = new Set();
  for (const row of rows) {
    requestPut(row);
    seen.add(row.id);
  }
  requestsKeep(seen);
  changed("requests");
}

async function decide(conv, accept) {
  try {
    if (accept) {
      const reply = await socket.accept(conv.id);
      upsertConversation(reply.conversation);
      // The list's snapshot carries the unread count (a single conversation's does not).
      await loadConversations();
    } else {
      await socket.decline(conv.id);
    }
  } catch (err) {
    toast(`Could not ${accept ? "accept" : "decline"}: ${err.message}`, "error");
    return;
  }
  requestRemove(conv.id);
  changed("requests");
  changed("list");
  if (accept) queryPresence();
}

/** Draw #req-list: who asks (or the group's name), the last message, Accept / Decline. */
export function renderRequests() {
  const rows = requestsAll().sort((a, b) => b.id - a.id);
  ui.requests.hidden = rows.length === 0;
  const items = rows.map((conv) => {
    const who = el("span", { class: "conv-title" });
    if (conv.kind === "group") who.textContent = conv.title || "Group";
    else if (conv.invited_by !== null) nameInto(who, names, conv.invited_by);
    const last = conv.last_message;
    // A request is decided on its messages: the last one shows here (the thread, once accepted).
    const preview =
      conv.kind === "group" && conv.invited_by !== null
        ? el("span", { class: "conv-preview" }, "Invited by ", nameInto(el("span"), names, conv.invited_by))
        : el("span", { class: "conv-preview" }, last ? (last.deleted ? "Message deleted" : last.body) : "No messages yet");
    const label = conv.kind === "group" ? "invitation" : "request";
    return el(
      "li",
      { class: "conv-item request-item", dataset: { conversationId: conv.id } },
      el("span", { class: "conv-main" }, who, preview),
      el(
        "span",
        { class: "row" },
        el("button", { type: "button", class: "request-accept", "aria-label": `Accept ${label}`, onclick: () => decide(conv, true) }, "Accept"),
        el("button", { type: "button", class: "secondary request-decline", "aria-label": `Decline ${label}`, onclick: () => decide(conv, false) }, "Decline"),
      ),
    );
  });
  ui.requestList.replaceChildren(...items);
}

/** Load one conversation (members, read markers); null when it cannot be read. */
export async function loadConversation(id) {
  try {
    const conv = upsertConversation(await api("GET", `/api/conversations/${id}`));
    changed("list");
    return conv;
  } catch {
    return null;
  }
}

/** Ask who of everyone's conversation partners is online (the first 200). */
export async function queryPresence() {
  const ids = new Set();
  for (const conv of conversationsAll()) for (const u of others(conv)) ids.add(u);
  const list = [...ids].slice(0, 200);
  if (!list.length || !socket.isOpen) return;
  try {
    const reply = await socket.request("presence.query", { user_ids: list }, { queue: false });
    for (const p of reply.presence || []) presenceSet(p);
    changed("list");
    changed("head");
  } catch {
    // Presence is decoration: the next connect asks again.
  }
}
