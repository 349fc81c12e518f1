// Message search in the sidebar (#search-form, #search-section): `GET /api/search`, the results
// (conversation, author, time, the snippet with its hits in <mark>, built from the plain-text
// pieces: never HTML from the server), "More results" along the `next` cursor, and a result
// opening its conversation at that message (thread.js `showMessage`). Escape or "Close search"
// goes back to the list. Draws on the "search" topic.

import { api, el, nameInto } from "../common.js";
import { formatFull, formatMessageTime } from "../dates.js";
import { $, names } from "./page.js";
import { changed, conversationGet, requestsAll, searchAdd, searchGet, searchStart } from "./state.js";
import { convTitleInto } from "./list.js";
import { showMessage } from "./thread.js";

const form = $("search-form");
const input = $("search-input");
const section = $("search-section");
const list = $("search-list");
const status = $("search-status");
const more = $("search-more");

function snippetNode(pieces) {
  return el(
    "span",
    { class: "search-snippet" },
    pieces.map((p) => (p.hit ? el("mark", {}, p.text) : p.text)),
  );
}

function resultNode(r) {
  const conv = conversationGet(r.conversation_id) || requestsAll().find((c) => c.id === r.conversation_id);
  const where = el("span", { class: "search-where" });
  if (conv) convTitleInto(where, conv);
  else where.textContent = `Conversation ${r.conversation_id}`;
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: "search-result",
        dataset: { conversation: r.conversation_id, seq: r.seq },
        onclick: () => showMessage(r.conversation_id, r.seq),
      },
      el(
        "span",
        { class: "search-meta" },
        where,
        " · ",
        nameInto(el("span", { class: "search-author" }), names, r.sender_id),
        " · ",
        el("time", { datetime: r.created_at, title: formatFull(r.created_at) }, formatMessageTime(r.created_at)),
      ),
      snippetNode(r.snippet),
    ),
  );
}

export function renderSearch() {
  const s = searchGet();
  section.hidden = !s;
  $("conv-list").hidden = Boolean(s);
  if (!s) return;
  list.replaceChildren(...s.found.map(resultNode));
  more.hidden = !s.next;
}

async function fetchPage(q, cursor) {
  const params = new URLSearchParams({ q });
  if (cursor) params.set("cursor", cursor);
  status.textContent = "Searching…";
  try {
    const page = await api("GET", `/api/search?${params}`);
    if (!searchAdd(q, page)) return;
    const n = searchGet().found.length;
    status.textContent = n ? `${n}${page.next ? "+" : ""} message${n === 1 ? "" : "s"} found for “${q}”.` : `No message found for “${q}”.`;
  } catch (err) {
    if (searchGet()?.q === q) status.textContent = err.message;
  }
  changed("search");
}

function closeSearch() {
  searchStart(null);
  input.value = "";
  changed("search");
}

export function bindSearch() {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    searchStart(q);
    changed("search");
    fetchPage(q, null);
  });
  more.addEventListener("click", () => {
    const s = searchGet();
    if (s?.next) fetchPage(s.q, s.next);
  });
  $("search-close").addEventListener("click", closeSearch);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && searchGet()) closeSearch();
  });
}
