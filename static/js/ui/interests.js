// An interest picker: chips plus a combobox that suggests from GET /api/interests?q=.
// Used by the profile page (progressive enhancement of its comma-separated field) and Meet.

import { combobox } from "./combobox.js";
import { api, el } from "./common.js";

/**
 * interestPicker({input, chips, suggestions, max, maxLength, initial, onChange, onProblem})
 *   -> {values, set, commit}
 *
 * input: a text <input>; chips: <ul> for the chosen interests; suggestions: <ul> for the
 * matches. Enter or "," adds (the highlighted suggestion, or the typed text), Backspace in
 * an empty input removes the last chip. maxLength (the server's limit) caps what can be
 * typed; onProblem(text) is told why typing stopped or a chip was refused (null: all well
 * again); without it the input's own validity bubble says so.
 */
export function interestPicker({
  input,
  chips,
  suggestions,
  max = 20,
  maxLength = null,
  initial = [],
  onChange = () => {},
  onProblem = null,
}) {
  let values = [];
  const problem = (text) => {
    if (onProblem) return onProblem(text);
    input.setCustomValidity(text || "");
    if (text) input.reportValidity();
  };
  const tooLong = `An interest has at most ${maxLength} characters.`;
  if (maxLength) input.maxLength = maxLength;
  const norm = (s) => s.trim().replace(/\s+/g, " ").toLowerCase();
  const chosen = (name) => values.some((v) => norm(v) === norm(name));

  function renderChips() {
    chips.replaceChildren(
      ...values.map((v) =>
        el(
          "li",
          { class: "chip", dataset: { interest: v } },
          v,
          el("button", { type: "button", class: "link", "aria-label": `Remove ${v}`, onclick: () => remove(v) }, "×"),
        ),
      ),
    );
  }

  function add(text) {
    const v = text.trim().replace(/\s+/g, " ");
    input.value = "";
    combo.close();
    if (!v || chosen(v)) return;
    if (values.length >= max) {
      problem(`At most ${max} interests.`);
      return;
    }
    if (maxLength && v.length > maxLength) {
      // Pasted into the plain text between commas: maxlength only caps the input itself.
      problem(tooLong);
      return;
    }
    problem(null);
    values.push(v);
    renderChips();
    onChange(values.slice());
  }

  function remove(v) {
    values = values.filter((x) => x !== v);
    renderChips();
    onChange(values.slice());
    input.focus();
  }

  const combo = combobox({
    input,
    listbox: suggestions,
    fetch: async (q) => (await api("GET", `/api/interests?q=${encodeURIComponent(q)}`)).filter((r) => !chosen(r.name)).slice(0, 8),
    label: (r) => [r.name, r.popularity ? el("small", { class: "muted" }, ` · ${r.popularity}`) : null],
    data: (r) => ({ interest: r.name }),
    onPick: (r) => add(r.name),
    // Enter with nothing highlighted adds the typed text; on an empty input the form submits.
    onEnterText: (text) => (text.trim() ? (add(text), true) : false),
  });
  input.addEventListener("input", () => {
    if (input.value.includes(",")) {
      const parts = input.value.split(",");
      input.value = parts.pop();
      for (const p of parts) add(p);
    }
    // At the cap the browser drops further keys silently: say why.
    if (maxLength) problem(input.value.length >= maxLength ? tooLong : null);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Backspace" && !input.value && values.length) remove(values[values.length - 1]);
  });

  function set(list) {
    values = [];
    for (const v of list) {
      const t = String(v).trim();
      if (t && !chosen(t)) values.push(t);
    }
    values = values.slice(0, max);
    renderChips();
  }
  set(initial);

  return {
    values: () => values.slice(),
    set,
    /** Add what is typed but not yet committed (e.g. before a form submits). */
    commit: () => input.value.trim() && add(input.value),
  };
}
