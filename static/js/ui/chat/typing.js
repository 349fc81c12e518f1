// Typing indicators: telling the server that I type in the open thread (`typing.start` at most
// every TYPING_RESEND_MS, `typing.stop`), showing who else types (each for TYPING_EXPIRE_MS after
// their last start) and drawing #typing for the open thread. Draws on the "typing" topic.

import { el } from "../common.js";
import { names, socket, TYPING_EXPIRE_MS, TYPING_RESEND_MS, ui } from "./page.js";
import { changed, threadGet, typingSentAtGet, typingSentAtSet, typistSet, typistsAll, typistsIn } from "./state.js";

export function sendTypingStart() {
  const active = threadGet();
  if (!active || !socket.isOpen) return;
  const t = Date.now();
  if (t - typingSentAtGet() < TYPING_RESEND_MS) return;
  typingSentAtSet(t);
  socket.notify("typing.start", { conversation_id: active.id });
}

export function sendTypingStop() {
  const active = threadGet();
  if (!active || !typingSentAtGet()) return;
  typingSentAtSet(0);
  socket.notify("typing.stop", { conversation_id: active.id });
}

/** Show (on) or stop showing someone typing in a conversation. */
export function setTyping(conversationId, userId, on) {
  // A typist who goes silent (closed tab, lost network) stops showing after a while.
  typistSet(conversationId, userId, on ? setTimeout(() => setTyping(conversationId, userId, false), TYPING_EXPIRE_MS) : null);
  if (threadGet()?.id === conversationId) changed("typing");
  changed("list");
}

/** Nobody is shown typing any more (we no longer hear the connection that told us). */
export function clearTyping() {
  for (const [cid, uid] of typistsAll()) setTyping(cid, uid, false);
}

export function renderTyping() {
  const active = threadGet();
  const ids = active ? typistsIn(active.id) : [];
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
