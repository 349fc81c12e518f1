// An ARIA combobox: a text input whose typing fetches suggestions into a listbox.
// Arrow keys move, Enter picks, Escape closes; mouse picks without stealing focus.
// Used by the people search (new conversation) and the interest picker.

import { debounce, el } from "./common.js";

/**
 * combobox({input, listbox, fetch, label, data, onPick, onEnterText}) -> {close}
 *
 * fetch(q) -> Promise<items>; label(item) -> text or nodes for its option; data(item) ->
 * the option's data-* attributes; onPick(item); onEnterText(text) -> bool: Enter with no
 * suggestion highlighted (true = handled).
 */
export function combobox({ input, listbox, fetch, label, data = () => ({}), onPick, onEnterText = () => false }) {
  let hits = [];
  let index = -1;
  const id = listbox.id || (listbox.id = `combo-${Math.random().toString(36).slice(2, 8)}`);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", id);
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("autocomplete", "off");
  listbox.setAttribute("role", "listbox");

  function render() {
    input.setAttribute("aria-expanded", hits.length ? "true" : "false");
    listbox.replaceChildren(
      ...hits.map((item, i) =>
        el(
          "li",
          {
            role: "option",
            id: `${id}-${i}`,
            class: "suggestion",
            "aria-selected": i === index ? "true" : "false",
            dataset: data(item),
            onmousedown: (ev) => ev.preventDefault(), // keep focus in the input
            onclick: () => pick(item),
          },
          label(item),
        ),
      ),
    );
    if (index >= 0) input.setAttribute("aria-activedescendant", `${id}-${index}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function close() {
    hits = [];
    index = -1;
    render();
  }

  function pick(item) {
    close();
    onPick(item);
  }

  const search = debounce(async () => {
    const q = input.value.trim();
    if (!q) return close();
    let items = [];
    try {
      items = await fetch(q);
    } catch {
      items = [];
    }
    if (input.value.trim() !== q) return; // typed on meanwhile
    hits = items;
    index = hits.length ? 0 : -1;
    render();
  }, 150);

  input.addEventListener("input", search);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && hits.length) {
      ev.preventDefault();
      index = (index + 1) % hits.length;
      render();
    } else if (ev.key === "ArrowUp" && hits.length) {
      ev.preventDefault();
      index = (index - 1 + hits.length) % hits.length;
      render();
    } else if (ev.key === "Enter") {
      if (index >= 0 && hits[index]) {
        ev.preventDefault();
        pick(hits[index]);
      } else if (onEnterText(input.value)) {
        ev.preventDefault();
      }
    } else if (ev.key === "Escape" && hits.length) {
      ev.preventDefault();
      close();
    }
  });
  return { close };
}
