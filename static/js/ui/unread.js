// The unread total on every page: "(3) " before the tab's title and a badge on the "Chats" link
// of the top bar (#nav-chats). The chat page sums its own list's counts; a page with a socket
// of its own (Meet, Live) keeps the same counts from REST on every (re)connect plus the pushes
// (`unread` after a read, +1 per `message.new` from someone else above the count's last_seq,
// docs/subsystems/receipts.md); a page without a socket reads the total once.

import { api, el } from "./common.js";

const baseTitle = document.title;

/** Show `total` unread messages in the tab's title and on the "Chats" link. */
export function showUnreadTotal(total) {
  document.title = total > 0 ? `(${total}) ${baseTitle}` : baseTitle;
  const link = document.getElementById("nav-chats");
  if (!link) return;
  let badge = link.querySelector(".nav-badge");
  if (total > 0) {
    const content = [String(total), el("span", { class: "sr-only" }, " unread")];
    if (!badge) link.append(" ", (badge = el("span", { class: "badge nav-badge" })));
    badge.replaceChildren(...content);
    badge.dataset.count = String(total);
  } else if (badge) {
    badge.remove();
  }
}

/** Keep the total of a page that has `socket` (signed in as `me`) but no conversation list. */
export function trackUnreadTotal(socket, me) {
  const counts = new Map(); // conversation id -> {unread, asOf: the seq the count covers}
  const versions = new Map(); // conversation id -> version of the last `unread` applied
  const show = () => showUnreadTotal([...counts.values()].reduce((n, c) => n + c.unread, 0));
  socket.onOpen(async () => {
    versions.clear(); // versions restart with each connection
    let rows;
    try {
      rows = await api("GET", "/api/conversations");
    } catch {
      return; // decoration: the next connect reads again
    }
    counts.clear();
    for (const row of rows) counts.set(row.id, { unread: row.unread || 0, asOf: row.last_seq || 0 });
    show();
  });
  socket.on("unread", (u) => {
    if ((versions.get(u.conversation_id) ?? -Infinity) > u.version) return;
    versions.set(u.conversation_id, u.version);
    counts.set(u.conversation_id, { unread: u.unread, asOf: u.last_seq });
    show();
  });
  socket.on("message.new", (m) => {
    if (m.sender_id === me || m.deleted) return;
    const known = counts.get(m.conversation_id) || { unread: 0, asOf: 0 };
    if (m.seq <= known.asOf) return; // in the count already
    counts.set(m.conversation_id, { unread: known.unread + 1, asOf: known.asOf });
    show();
  });
  socket.on("conversation.left", (d) => {
    counts.delete(d.conversation_id);
    show();
  });
}

/** A page without a socket: the total as it is now (GET /api/unread). */
export async function loadUnreadTotal() {
  try {
    showUnreadTotal((await api("GET", "/api/unread")).total || 0);
  } catch {
    // Decoration: no badge.
  }
}
