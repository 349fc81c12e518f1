// The "New conversation" dialog (#new-conv): direct or group, people found with a keyboard-driven
// search (combobox.js), the picked people as removable chips, and creating the conversation
// over REST, which then opens.

import { combobox } from "../combobox.js";
import { api, el } from "../common.js";
import { $, names } from "./page.js";
import { changed, pickedAdd, pickedHas, pickedList, pickedRemove, pickedReset } from "./state.js";
import { queryPresence, upsertConversation } from "./list.js";
import { openConversation } from "./thread.js";

const dlg = {
  dialog: $("new-conv"),
  form: $("new-conv-form"),
  search: $("new-conv-search"),
  results: $("new-conv-results"),
  picked: $("new-conv-picked"),
  titleField: $("new-conv-title-field"),
  title: $("new-conv-group-title"),
  error: $("new-conv-error"),
};

function dialogKind() {
  return dlg.form.querySelector("input[name=kind]:checked").value;
}

function renderPicked() {
  dlg.picked.replaceChildren(
    ...pickedList().map(([uid, name]) =>
      el(
        "li",
        { class: "chip" },
        name,
        el("button", { type: "button", class: "link", "aria-label": `Remove ${name}`, onclick: () => (pickedRemove(uid), renderPicked()) }, "×"),
      ),
    ),
  );
}

function pick(hit) {
  const name = hit.display_name || hit.username;
  names.seed(hit.user_id, name);
  if (dialogKind() === "direct") pickedReset();
  pickedAdd(hit.user_id, name);
  dlg.search.value = "";
  renderPicked();
  dlg.search.focus();
}

export function bindDialog() {
  const people = combobox({
    input: dlg.search,
    listbox: dlg.results,
    fetch: async (q) => (await api("GET", `/api/users?q=${encodeURIComponent(q)}`)).filter((h) => !pickedHas(h.user_id)),
    label: (h) => [h.display_name || h.username, h.display_name && h.display_name !== h.username ? el("small", { class: "muted" }, ` @${h.username}`) : null],
    data: (h) => ({ userId: h.user_id, username: h.username }),
    onPick: pick,
    onEnterText: (text) => text.trim() !== "", // Enter on an empty search box submits
  });
  for (const radio of dlg.form.querySelectorAll("input[name=kind]")) {
    radio.addEventListener("change", () => {
      dlg.titleField.hidden = dialogKind() !== "group";
      if (dialogKind() === "direct" && pickedList().length > 1) {
        pickedReset([pickedList()[0]]);
        renderPicked();
      }
    });
  }

  $("new-conv-open").addEventListener("click", () => {
    pickedReset();
    dlg.error.textContent = "";
    dlg.search.value = "";
    dlg.title.value = "";
    renderPicked();
    people.close();
    dlg.dialog.showModal();
    dlg.search.focus();
  });
  $("new-conv-cancel").addEventListener("click", () => dlg.dialog.close());

  dlg.form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    dlg.error.textContent = "";
    const kind = dialogKind();
    const ids = pickedList().map(([uid]) => uid);
    if (!ids.length) {
      dlg.error.textContent = "Choose at least one person.";
      return;
    }
    const body = kind === "direct" ? { kind, user_id: ids[0] } : { kind, title: dlg.title.value.trim() || "Group", member_ids: ids };
    try {
      const conv = upsertConversation(await api("POST", "/api/conversations", body));
      dlg.dialog.close();
      changed("list");
      queryPresence();
      openConversation(conv.id, true);
    } catch (err) {
      dlg.error.textContent = err.message;
    }
  });
}
