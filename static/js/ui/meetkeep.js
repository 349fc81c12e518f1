// "Keep in touch" in the Meet room: each side may choose it (`match.keep`); the partner is
// told (`match.keep` event); when both chose, the match becomes a direct conversation between
// them (`match.kept` with its id) and the page links to it, also after the chat ends.

import { el, toast } from "./common.js";

/**
 * button: the "Keep in touch" toggle of the matched view; status: where the state and the
 * link are written (outside the phase sections, so the link outlives the match);
 * getMatch() -> {id} | null; partnerName() -> the partner's name.
 */
export function keepInTouch({ socket, button, status, getMatch, partnerName }) {
  let kept = null; // {match_id, conversation_id}

  function reset() {
    kept = null;
    button.disabled = false;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Keep in touch";
    status.replaceChildren();
    status.hidden = true;
  }

  function say(...nodes) {
    status.replaceChildren(...nodes);
    status.hidden = false;
  }

  function showKept(matchId, conversationId) {
    kept = { match_id: matchId, conversation_id: conversationId };
    button.disabled = true;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Kept in touch";
    say(`You and ${partnerName()} kept in touch: `, el("a", { href: `/c/${conversationId}`, id: "meet-kept-link" }, `open your conversation with ${partnerName()}`), ".");
  }

  button.addEventListener("click", async () => {
    const m = getMatch();
    if (!m || kept) return;
    try {
      const reply = await socket.request("match.keep", { match_id: m.id });
      if (reply.kept) showKept(reply.match_id, reply.conversation_id);
      else if (getMatch()?.id === m.id) {
        button.setAttribute("aria-pressed", "true");
        button.disabled = true;
        say(`You chose to keep in touch. If ${partnerName()} chooses it too, you get a conversation together.`);
      }
    } catch (err) {
      toast(`Could not keep in touch: ${err.message}`, "error");
    }
  });

  socket.on("match.found", () => reset());
  // A match that ended before both chose: nothing to keep (the choice lapses with it).
  socket.on("match.ended", (d) => {
    if (!kept || kept.match_id !== d.match_id) reset();
  });
  socket.on("match.keep", (d) => {
    if (getMatch()?.id !== d.match_id || kept) return;
    if (button.getAttribute("aria-pressed") === "true") return; // we asked too: match.kept follows
    say(`${partnerName()} would like to keep in touch: press “Keep in touch” to get a conversation together.`);
  });
  socket.on("match.kept", (d) => {
    if (kept?.match_id === d.match_id) return;
    showKept(d.match_id, d.conversation_id);
  });

  reset();
  return { reset };
}
