// The profile page's "People you blocked": the list (GET /api/meet/blocks) with an Unblock
// button each (DELETE /api/meet/blocks/<user_id>). After unblocking, the two may be matched
// in Meet and message each other again.

import { api, el } from "./common.js";

const list = document.getElementById("blocks-list");
const empty = document.getElementById("blocks-empty");
const error = document.getElementById("blocks-error");

function row(block) {
  const name = block.display_name || block.username;
  const button = el("button", { type: "button", class: "secondary", "aria-label": `Unblock ${name}` }, "Unblock");
  const item = el("li", { dataset: { userId: String(block.user_id) } }, el("span", {}, name, " ", el("small", { class: "muted" }, `@${block.username}`)), button);
  button.addEventListener("click", async () => {
    button.disabled = true;
    error.textContent = "";
    try {
      await api("DELETE", `/api/meet/blocks/${block.user_id}`);
      item.remove();
      error.textContent = `${name} is unblocked.`;
      empty.hidden = list.children.length > 0;
    } catch (err) {
      button.disabled = false;
      error.textContent = `Could not unblock ${name}: ${err.message}`;
    }
  });
  return item;
}

async function load() {
  try {
    const { blocks } = await api("GET", "/api/meet/blocks");
    list.replaceChildren(...blocks.map(row));
    empty.hidden = blocks.length > 0;
  } catch (err) {
    error.textContent = `Could not load the people you blocked: ${err.message}`;
  }
}

if (list) load();
