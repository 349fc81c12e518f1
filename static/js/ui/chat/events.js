// What the server pushes: each event applied to the store, then the parts of the page it
// touches redrawn. Also the socket's gap (page forward over REST), outbox and open hooks.

import { api, toast } from "../common.js";
import { me, socket } from "./page.js";
import {
  changed,
  conversationBump,
  conversationGet,
  conversationHas,
  conversationMessageUpdate,
  conversationRemove,
  conversationUnreadSet,
  conversationsAll,
  listLoadedGet,
  markerRaise,
  presenceForget,
  presencePush,
  requestPut,
  requestRemove,
  requestsKeep,
  threadGet,
  unreadVersionAccept,
  unreadVersionsClear,
} from "./state.js";
import { loadConversation, loadConversations, loadRequests, queryPresence, upsertConversation } from "./list.js";
import { refreshStatuses, renderPending, upsertMessage } from "./messages.js";
import { closeThread, loadLatest, markRead } from "./thread.js";
import { setTyping } from "./typing.js";

const GAP_PAGE = 200;
const UNREAD_LISTED_MAX = 200; // `unread.get` lists at most this many conversations

export function bindEvents() {
  socket.on("message.new", async (msg) => {
    if (!conversationHas(msg.conversation_id)) await loadConversation(msg.conversation_id);
    const conv = conversationGet(msg.conversation_id);
    conversationBump(msg);
    if (msg.sender_id !== null) setTyping(msg.conversation_id, msg.sender_id, false);
    const reading = threadGet()?.id === msg.conversation_id;
    if (reading) {
      upsertMessage(msg);
      markRead();
    } else if (conv && msg.sender_id !== me && msg.seq > (conv.unreadAsOf ?? 0)) {
      // Counts are pushed after a read, not per message: add what came after the last count.
      conversationUnreadSet(conv, (conv.unread || 0) + 1);
    }
    changed("list");
  });

  socket.on("message.updated", (msg) => {
    conversationMessageUpdate(msg);
    // A message the thread has not loaded is read in its current state with its page.
    if (threadGet()?.messages.has(msg.seq)) upsertMessage(msg, { scroll: false });
    changed("list");
  });

  socket.on("conversation.joined", async (data) => {
    // Also what an accepted request becomes (accepted here or on another device).
    requestRemove(data.conversation_id);
    changed("requests");
    await loadConversation(data.conversation_id);
    queryPresence();
  });

  // A request or an invitation: shown apart until accepted; nothing else of it is pushed.
  socket.on("conversation.request", () => loadRequests().catch(() => {}));

  socket.on("conversation.left", (data) => {
    requestRemove(data.conversation_id);
    changed("requests");
    conversationRemove(data.conversation_id);
    if (threadGet()?.id === data.conversation_id) {
      toast("You are no longer in that conversation.");
      closeThread();
    }
    changed("list");
  });

  socket.on("conversation.members", (data) => {
    loadConversation(data.conversation_id).then(() => {
      changed("head");
      changed("group");
    });
  });

  // An invited member accepted: they are a member now (the members list says so).
  socket.on("conversation.accepted", (data) => {
    if (!conversationHas(data.conversation_id)) return;
    loadConversation(data.conversation_id).then(() => {
      changed("head");
      changed("group");
    });
    queryPresence();
  });

  socket.on("conversation.renamed", (data) => {
    const conv = conversationGet(data.conversation_id);
    if (!conv) return;
    conv.title = data.title;
    changed("list");
    changed("head");
    changed("group");
  });

  socket.on("presence", (p) => {
    if (!presencePush(p)) return;
    changed("list");
    changed("head");
  });

  socket.on("presence.hidden", (p) => {
    presenceForget(p.user_id);
    changed("list");
    changed("head");
  });

  socket.on("typing", (t) => {
    if (t.user_id !== me) setTyping(t.conversation_id, t.user_id, t.typing);
  });

  socket.on("read", (r) => {
    markerRaise(r.conversation_id, r.user_id, r.seq);
    refreshStatuses(r.conversation_id);
  });

  socket.on("unread", async (u) => {
    // Pushed before this page knew the conversation (still loading after `conversation.joined`):
    // load it, then apply the count (a single conversation's snapshot carries none).
    if (!conversationHas(u.conversation_id)) await loadConversation(u.conversation_id);
    const conv = conversationGet(u.conversation_id);
    if (!conv) return;
    // Pushes of several server processes may cross: apply only newer versions.
    if (typeof u.version === "number" && !unreadVersionAccept(u.conversation_id, u.version)) return;
    const reading = threadGet()?.id === u.conversation_id;
    conversationUnreadSet(conv, reading && document.visibilityState === "visible" ? 0 : u.unread, u.last_seq);
    if (reading && u.unread > 0) markRead();
    changed("list");
  });

  socket.onGap(async ({ conversation_id, after_seq, latest_seq }) => {
    // More was missed than the server replays: page forward over REST.
    if (threadGet()?.id !== conversation_id) return;
    let after = after_seq;
    while (threadGet()?.id === conversation_id && after < latest_seq) {
      const batch = await api("GET", `/api/conversations/${conversation_id}/messages?after=${after}&limit=${GAP_PAGE}`);
      for (const m of batch.messages) upsertMessage(m);
      if (!batch.messages.length) break;
      after = batch.messages[batch.messages.length - 1].seq;
    }
  });

  socket.onStale(({ conversation_id }) => {
    // More edits and deletes were missed than the server replays: re-read what is shown.
    if (threadGet()?.id === conversation_id) loadLatest();
  });

  socket.onOutbox(() => renderPending());

  socket.onOpen(async ({ reconnect, joined, requests, truncated }) => {
    unreadVersionsClear(); // versions restart with the connection
    if (!listLoadedGet() || truncated) {
      await loadConversations().catch(() => {});
      await loadRequests().catch(() => {});
      if (reconnect && threadGet()) loadLatest();
    } else if (reconnect) {
      // What changed while away came with `sync`: messages and edits/deletes as events,
      // the conversations left as `conversation.left`, and here the ones joined and the
      // requests. Only the unread counts (reads on other devices) are asked again.
      for (const conv of joined) upsertConversation(conv);
      for (const req of requests) requestPut(req);
      requestsKeep(new Set(requests.map((r) => r.id)));
      changed("requests");
      await refreshUnread();
      changed("list");
    }
    queryPresence();
    markRead();
  });
}

/** Ask the exact unread counts again (`unread.get`): what the page counted may be stale. */
async function refreshUnread() {
  let reply;
  try {
    reply = await socket.request("unread.get", {}, { queue: false });
  } catch {
    return; // the counts stay as counted; the next read pushes exact ones
  }
  const counts = new Map(reply.conversations.map((c) => [c.conversation_id, c.unread]));
  const complete = reply.conversations.length < UNREAD_LISTED_MAX;
  for (const conv of conversationsAll()) {
    if (counts.has(conv.id) || complete) conversationUnreadSet(conv, counts.get(conv.id) || 0, conv.last_seq);
  }
}
