// Block and unblock from a direct conversation's header (#thread-block): a blocked person
// cannot message me nor start a new conversation with me, and our presence is hidden both
// ways; Unblock takes it back (REST: /api/meet/blocks). Draws on the "head" topic.

import { api, toast } from "../common.js";
import { $, names } from "./page.js";
import { blockedHas, blockedReset, blockedSet, changed, conversationGet, threadGet } from "./state.js";
import { directPeer } from "./list.js";

const button = $("thread-block");
const note = $("thread-blocked");

function peerOfThread() {
  const active = threadGet();
  const conv = active && conversationGet(active.id);
  return conv ? directPeer(conv) : undefined;
}

export async function renderBlock() {
  const peer = peerOfThread();
  button.hidden = peer === undefined;
  if (peer === undefined) {
    note.textContent = "";
    return;
  }
  const on = blockedHas(peer);
  const name = await names.get(peer);
  if (peerOfThread() !== peer) return; // another thread opened meanwhile
  button.textContent = on ? "Unblock" : "Block";
  button.setAttribute("aria-label", `${on ? "Unblock" : "Block"} ${name}`);
  button.className = on ? "secondary" : "danger";
  note.textContent = on ? `You blocked ${name}: neither of you can send messages here.` : "";
}

export function bindBlock() {
  button.addEventListener("click", async () => {
    const peer = peerOfThread();
    if (peer === undefined) return;
    const on = blockedHas(peer);
    button.disabled = true;
    try {
      if (on) await api("DELETE", `/api/meet/blocks/${peer}`);
      else await api("POST", "/api/meet/blocks", { user_id: peer });
      blockedSet(peer, !on);
      changed("head");
    } catch (err) {
      toast(`Could not ${on ? "unblock" : "block"}: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  api("GET", "/api/meet/blocks")
    .then(({ blocks }) => {
      blockedReset(blocks.map((b) => b.user_id));
      changed("head");
    })
    .catch(() => {});
}
