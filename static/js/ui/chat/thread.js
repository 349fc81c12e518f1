// The open thread: opening and closing a conversation (with the browser history: /c/<id>, back,
// Escape in an empty composer), its head (#thread-title, #thread-sub, presence), loading the
// newest page of history and older pages on scroll or with "Load older messages", and marking
// what is read (`read`, 250 ms after new messages become visible); opening it at one message (a
// search result: `showMessage`). Draws on the "head" topic.

import { api, debounce, toast } from "../common.js";
import { $, HISTORY_PAGE, HISTORY_PAGE_MAX, me, socket, ui } from "./page.js";
import {
  changed,
  conversationGet,
  conversationHas,
  conversationUnreadSet,
  markerOf,
  markerRaise,
  presenceGet,
  threadClose,
  threadGet,
  threadOpen,
  threadUpdate,
} from "./state.js";
import { convTitleInto, directPeer, loadConversation, others, presenceOf } from "./list.js";
import { markDays, renderPending, scrollToBottom, upsertMessage } from "./messages.js";
import { sendTypingStop } from "./typing.js";

export function showThread(show) {
  ui.thread.hidden = !show;
  ui.placeholder.hidden = show;
  ui.root.dataset.view = show ? "thread" : "list";
}

export function renderThreadHead() {
  const active = threadGet();
  if (!active) return;
  const conv = conversationGet(active.id);
  if (!conv) return;
  convTitleInto(ui.title, conv);
  const state = presenceOf(conv);
  ui.presence.dataset.online = state;
  const peer = directPeer(conv);
  // Pending members (a request or an invitation not yet accepted) as the last snapshot had them.
  const pending = new Set((conv.members || []).filter((m) => m.state === "pending").map((m) => m.user_id));
  if (peer !== undefined) {
    ui.sub.textContent = pending.has(peer)
      ? "Request sent: waiting for them to accept"
      : state === "online"
        ? "online"
        : state === "offline"
          ? "offline"
          : "";
  } else {
    const n = (conv.member_ids || []).filter((u) => !pending.has(u)).length;
    const on = others(conv).filter((u) => presenceGet(u)?.online).length;
    ui.sub.textContent = `${n} member${n === 1 ? "" : "s"}, ${on} online` + (pending.size ? `, ${pending.size} invited` : "");
  }
}

/** Open a conversation (push: add /c/<id> to the browser history). */
export async function openConversation(id, push) {
  id = Number(id);
  if (push && location.pathname !== `/c/${id}`) history.pushState({ id }, "", `/c/${id}`);
  if (threadGet()?.id !== id) {
    sendTypingStop();
    threadOpen(id);
    ui.messageList.replaceChildren();
    ui.input.value = "";
    $("composer-error").textContent = ""; // a refusal belongs to the thread it happened in
  }
  showThread(true);
  if (!conversationHas(id)) await loadConversation(id);
  else loadConversation(id); // refresh members and read markers
  if (threadGet()?.id !== id) return;
  changed("head");
  changed("typing");
  changed("list");
  await loadLatest();
  renderPending();
  ui.input.focus();
}

export function closeThread() {
  sendTypingStop();
  threadClose();
  showThread(false);
  if (location.pathname !== "/") history.pushState({}, "", "/");
  changed("list");
  changed("group");
}

/** Load the newest page of the open thread. */
export async function loadLatest() {
  if (!threadGet()) return;
  const id = threadGet().id;
  try {
    const batch = await api("GET", `/api/conversations/${id}/messages?limit=${HISTORY_PAGE}`);
    if (threadGet()?.id !== id) return;
    if (threadGet().messages.size === 0) threadUpdate({ hasMore: batch.has_more });
    for (const m of batch.messages) upsertMessage(m, { scroll: false });
    // The thread holds every message up to the newest of this page (its cursor: see
    // upsertConversation); a newer one still on its way over the socket is not dropped.
    const newest = batch.messages[batch.messages.length - 1];
    if (newest) socket.setCursor(id, newest.seq);
    scrollToBottom();
    markRead();
  } catch (err) {
    if (threadGet()?.id === id) toast(`Could not load messages: ${err.message}`, "error");
  }
  updateOlderButton();
}

async function loadOlder() {
  const active = threadGet();
  if (!active || active.loading || !active.hasMore) return;
  const id = active.id;
  const oldest = Math.min(...active.messages.keys());
  threadUpdate({ loading: true });
  const before = ui.messages.scrollHeight - ui.messages.scrollTop;
  try {
    const batch = await api("GET", `/api/conversations/${id}/messages?before=${oldest}&limit=${HISTORY_PAGE}`);
    if (threadGet()?.id !== id) return;
    threadUpdate({ hasMore: batch.has_more });
    for (const m of batch.messages) upsertMessage(m, { scroll: false });
    // Keep what the reader was looking at in place.
    ui.messages.scrollTop = ui.messages.scrollHeight - before;
  } catch (err) {
    toast(`Could not load older messages: ${err.message}`, "error");
  } finally {
    threadUpdate({ loading: false });
    updateOlderButton();
  }
}

/**
 * Open a conversation at one of its messages (a search result): the pages older than the
 * ones shown are loaded until it is there (the thread stays one unbroken run of history up
 * to the newest), then it is scrolled to the middle, highlighted and focused.
 */
export async function showMessage(conversationId, seq) {
  await openConversation(conversationId, true);
  const active = threadGet();
  if (active?.id !== conversationId) return;
  threadUpdate({ loading: true });
  try {
    while (threadGet() === active && !active.messages.has(seq) && active.hasMore) {
      const oldest = Math.min(...active.messages.keys());
      if (oldest <= seq) break; // not in the history (deleted meanwhile, or never there)
      const batch = await api(
        "GET",
        `/api/conversations/${conversationId}/messages?before=${oldest}&limit=${HISTORY_PAGE_MAX}`,
      );
      if (threadGet() !== active) return;
      threadUpdate({ hasMore: batch.has_more });
      for (const m of batch.messages) upsertMessage(m, { scroll: false });
    }
  } catch (err) {
    toast(`Could not load that message: ${err.message}`, "error");
  } finally {
    threadUpdate({ loading: false });
    updateOlderButton();
  }
  for (const li of ui.messageList.querySelectorAll("li.found")) li.classList.remove("found");
  const node = ui.messageList.querySelector(`li[data-seq="${seq}"]`);
  if (!node) {
    toast("That message is no longer in this conversation.", "error");
    return;
  }
  node.classList.add("found");
  node.setAttribute("tabindex", "-1");
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
}

function updateOlderButton() {
  const active = threadGet();
  ui.older.hidden = !(active && active.hasMore);
}

/** Tell the server how far the open thread is read (when the page is visible). */
export const markRead = debounce(async () => {
  const active = threadGet();
  if (!active || document.visibilityState !== "visible" || !socket.isOpen) return;
  const seqs = [...active.messages.keys()];
  if (!seqs.length) return;
  const top = Math.max(...seqs);
  const mine = markerOf(active.id, me);
  const conv = conversationGet(active.id);
  if (top <= mine && !(conv?.unread > 0)) return;
  try {
    const reply = await socket.request("read", { conversation_id: active.id, seq: top }, { queue: false });
    markerRaise(reply.conversation_id, me, reply.seq);
    // The exact count follows as an `unread` push; until then, what I read is all there was.
    if (conv && reply.seq >= (conv.last_seq || 0)) conversationUnreadSet(conv, 0);
  } catch {
    // Retried on the next message or focus.
  }
}, 250);

/** Listen to the page: reading, history, back, Escape. */
export function bindThread() {
  // Whatever adds, replaces or removes a bubble, the day separators follow.
  new MutationObserver(markDays).observe(ui.messageList, { childList: true });
  document.addEventListener("visibilitychange", () => markRead());
  window.addEventListener("focus", () => markRead());
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
    if (ev.key === "Escape" && threadGet() && document.activeElement === ui.input && !ui.input.value) closeThread();
  });
}
