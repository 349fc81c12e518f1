// The composer (#composer): sending through the socket's outbox (a pending bubble until the
// server stores it), Enter sends and Shift+Enter breaks the line, the textarea grows with its
// text, and typing in it sends the typing indicator.

import { toast } from "../common.js";
import { socket, ui } from "./page.js";
import { conversationBump, threadGet } from "./state.js";
import { renderPending, scrollToBottom, upsertMessage } from "./messages.js";
import { sendTypingStart, sendTypingStop } from "./typing.js";

const COMPOSER_MAX_HEIGHT_PX = 160;
const refusal = document.getElementById("composer-error"); // why the last send was refused

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = Math.min(ui.input.scrollHeight, COMPOSER_MAX_HEIGHT_PX) + "px";
}

export function bindComposer() {
  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const active = threadGet();
    if (!active) return;
    const body = ui.input.value;
    if (!body.trim()) return;
    refusal.textContent = "";
    ui.input.value = "";
    autosize();
    sendTypingStop();
    const cid = active.id;
    const { done } = socket.send(cid, body);
    renderPending();
    scrollToBottom();
    done.then(
      (msg) => {
        conversationBump(msg);
        upsertMessage(msg);
      },
      (err) => {
        if (err.code === "discarded") return;
        // Refused (blocked, not a member, declined, ...): the text comes back to the
        // composer, unless something else was typed meanwhile, and the reason stays shown.
        if (threadGet()?.id === cid && !ui.input.value) {
          ui.input.value = body;
          autosize();
        }
        refusal.textContent = `Not sent: ${err.message}`;
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
    refusal.textContent = "";
    autosize();
    if (ui.input.value.trim()) sendTypingStart();
    else sendTypingStop();
  });
}
