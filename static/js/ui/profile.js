// Profile page: turns the comma-separated interests field into chips with autocomplete.
// Without JavaScript the plain field still works; with it, the field stays the one the
// form posts (kept in sync), so the server side is unchanged.

import { el } from "./common.js";
import { interestPicker } from "./interests.js";
import { loadUnreadTotal } from "./unread.js";

loadUnreadTotal();

const field = document.getElementById("id_interests");
if (field) {
  const initial = field.value.split(",").map((s) => s.trim()).filter(Boolean);
  const typing = el("input", { type: "text", id: "interest-input", "aria-describedby": "interest-help" });
  const chips = el("ul", { class: "chips", id: "interest-chips", "aria-label": "Your interests" });
  const suggestions = el("ul", { class: "suggestions", id: "interest-suggestions", "aria-label": "Suggested interests" });
  // Why typing stopped or an interest was refused (the server's limits, before saving).
  const problem = el("p", { class: "errors", id: "interest-problem", "aria-live": "polite" });
  const maxCount = Number(field.dataset.maxCount) || 20;
  const maxLength = Number(field.dataset.maxLength) || null;
  const label = document.querySelector(`label[for="${field.id}"]`);
  const help = field.parentElement.querySelector("small");
  if (help) {
    help.id = "interest-help";
    help.textContent =
      `Type to search; Enter or a comma adds one, Backspace removes the last. ` +
      `At most ${maxCount}, each at most ${maxLength} characters.`;
  }
  field.type = "hidden";
  field.after(chips, typing, problem, suggestions);
  typing.setAttribute("aria-describedby", "interest-help interest-problem");
  if (label) label.htmlFor = typing.id;
  const picker = interestPicker({
    input: typing,
    chips,
    suggestions,
    max: maxCount,
    maxLength,
    initial,
    onProblem: (text) => {
      problem.textContent = text || "";
    },
    onChange: (values) => {
      field.value = values.join(", ");
    },
  });
  field.form.addEventListener("submit", () => {
    picker.commit();
    field.value = picker.values().join(", ");
  });
}
