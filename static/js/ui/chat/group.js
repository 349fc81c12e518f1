// Managing the open group (#group-dialog, opened by "Members" in the thread's head): its
// members (owners marked, invitations shown as "invited"), and for owners renaming it
// (PATCH /api/conversations/<id>), adding people (the people search; someone who is not the
// owner's contact is invited and decides under "Requests") and removing members; for everyone
// leaving it. Every other open page follows through the pushes (conversation.renamed,
// conversation.members, conversation.accepted, conversation.left). Draws on the "group" topic.

import { combobox } from "../combobox.js";
import { api, el, nameInto, toast } from "../common.js";
import { $, me, names } from "./page.js";
import { changed, conversationGet, conversationRemove, threadGet } from "./state.js";
import { loadConversation, upsertConversation } from "./list.js";
import { closeThread } from "./thread.js";

const ui = {
  open: $("group-open"),
  dialog: $("group-dialog"),
  title: $("group-dialog-title"),
  rename: $("group-rename"),
  renameInput: $("group-rename-input"),
  members: $("group-members"),
  add: $("group-add"),
  search: $("group-add-search"),
  results: $("group-add-results"),
  error: $("group-error"),
  actions: $("group-actions"),
  leave: $("group-leave"),
  close: $("group-close"),
};

/** The open thread's conversation when it is a group, else null. */
function openGroup() {
  const conv = threadGet() ? conversationGet(threadGet().id) : null;
  return conv?.kind === "group" ? conv : null;
}

function isOwner(conv) {
  return conv.role === "owner";
}

/** The members as the last snapshot had them: accepted first in join order, then invited. */
function membersOf(conv) {
  const rows = conv.members || (conv.member_ids || []).map((u) => ({ user_id: u, role: "member", state: "accepted" }));
  return [...rows].sort((a, b) => (a.state === "pending") - (b.state === "pending"));
}

function fail(what, err) {
  ui.error.textContent = `Could not ${what}: ${err.message}`;
}

async function removeMember(conv, userId) {
  ui.error.textContent = "";
  try {
    await api("DELETE", `/api/conversations/${conv.id}/members/${userId}`);
  } catch (err) {
    fail("remove", err);
    return;
  }
  await loadConversation(conv.id); // the push follows; this page need not wait for it
  changed("head");
}

function memberNode(conv, m) {
  const owner = isOwner(conv);
  const name = nameInto(el("span", { class: "member-name" }), names, m.user_id);
  const notes = [m.user_id === me ? "you" : null, m.role === "owner" ? "owner" : null, m.state === "pending" ? "invited" : null].filter(Boolean);
  const remove =
    owner && m.user_id !== me
      ? el("button", { type: "button", class: "link member-remove", "aria-label": `Remove ${names.now(m.user_id)}`, onclick: () => removeMember(conv, m.user_id) }, "Remove")
      : null;
  if (remove) names.get(m.user_id).then((n) => remove.setAttribute("aria-label", `Remove ${n}`));
  return el(
    "li",
    { class: "member", dataset: { userId: m.user_id, role: m.role, state: m.state } },
    name,
    notes.length ? el("small", { class: "muted member-notes" }, ` (${notes.join(", ")})`) : null,
    remove,
  );
}

/** Show "Members" for a group thread, and redraw the dialog while it is open. */
export function renderGroup() {
  const conv = openGroup();
  ui.open.hidden = !conv;
  if (!conv) {
    if (ui.dialog.open) ui.dialog.close();
    return;
  }
  const n = membersOf(conv).filter((m) => m.state !== "pending").length;
  ui.open.textContent = `Members (${n})`;
  if (!ui.dialog.open) return;
  ui.title.textContent = conv.title || "Group";
  const owner = isOwner(conv);
  ui.rename.hidden = !owner;
  ui.add.hidden = !owner;
  if (document.activeElement !== ui.renameInput) ui.renameInput.value = conv.title || "";
  ui.members.replaceChildren(...membersOf(conv).map((m) => memberNode(conv, m)));
}

async function addPerson(hit) {
  const conv = openGroup();
  if (!conv) return;
  const name = hit.display_name || hit.username;
  names.seed(hit.user_id, name);
  ui.search.value = "";
  ui.error.textContent = "";
  try {
    await api("POST", `/api/conversations/${conv.id}/members`, { user_ids: [hit.user_id] });
  } catch (err) {
    fail("add", err);
    return;
  }
  await loadConversation(conv.id);
  const invited = conversationGet(conv.id)?.members?.find((m) => m.user_id === hit.user_id)?.state === "pending";
  toast(invited ? `${name} is invited: they join once they accept.` : `${name} was added.`);
  changed("group");
  changed("head");
}

function confirmLeave(conv) {
  const restore = () => ui.actions.replaceChildren(ui.leave, ui.close);
  const sure = el(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        try {
          await api("POST", `/api/conversations/${conv.id}/leave`);
        } catch (err) {
          fail("leave", err);
          restore();
          return;
        }
        restore();
        ui.dialog.close();
        conversationRemove(conv.id);
        if (threadGet()?.id === conv.id) closeThread();
        changed("list");
        toast(`You left ${conv.title || "the group"}.`);
      },
    },
    "Leave",
  );
  ui.actions.replaceChildren(el("span", {}, "Leave this group? "), sure, el("button", { type: "button", class: "secondary", onclick: restore }, "Stay"));
  sure.focus();
}

export function bindGroup() {
  const people = combobox({
    input: ui.search,
    listbox: ui.results,
    fetch: async (q) => {
      const present = new Set(membersOf(openGroup() || {}).map((m) => m.user_id));
      return (await api("GET", `/api/users?q=${encodeURIComponent(q)}`)).filter((h) => !present.has(h.user_id));
    },
    label: (h) => [h.display_name || h.username, h.display_name && h.display_name !== h.username ? el("small", { class: "muted" }, ` @${h.username}`) : null],
    data: (h) => ({ userId: h.user_id, username: h.username }),
    onPick: addPerson,
  });
  ui.open.addEventListener("click", async () => {
    const conv = openGroup();
    if (!conv) return;
    ui.error.textContent = "";
    ui.search.value = "";
    people.close();
    ui.dialog.showModal();
    renderGroup();
    await loadConversation(conv.id); // the members as they are now
    changed("group");
  });
  ui.close.addEventListener("click", () => ui.dialog.close());
  ui.leave.addEventListener("click", () => {
    const conv = openGroup();
    if (conv) confirmLeave(conv);
  });
  ui.rename.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const conv = openGroup();
    const title = ui.renameInput.value.trim();
    if (!conv || !title) return;
    ui.error.textContent = "";
    try {
      upsertConversation(await api("PATCH", `/api/conversations/${conv.id}`, { title }));
    } catch (err) {
      fail("rename", err);
      return;
    }
    ui.renameInput.blur();
    changed("list");
    changed("head");
    changed("group");
  });
}
