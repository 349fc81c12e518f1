// The Meet page explains its search: on the setup form, that language is a hard filter and
// whether "Only mine" can work (a region in the profile); while waiting, what is searched
// for, how many people are waiting who could match (asked with `match.waiting` every
// `refresh_seconds`), a countdown to the next widening of the criteria, and why someone
// just met does not come back (recent partners are kept away for 30 minutes).

import { el } from "./common.js";

const LANGUAGES = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "language" }) : null;

export function languageName(code) {
  try {
    return (LANGUAGES && LANGUAGES.of(code)) || code;
  } catch {
    return code;
  }
}

function minutes(seconds) {
  const m = Math.round(seconds / 60);
  return m === 1 ? "1 minute" : `${m} minutes`;
}

/** Fill the setup form's notes from the profile ({language, region}). */
export function describeSetup(profile) {
  const lang = document.getElementById("meet-language");
  if (lang) lang.textContent = languageName(profile.language || "en");
  const only = document.querySelector("input[name=region][value=require]");
  const note = document.getElementById("meet-region-note");
  if (!only || !note) return;
  if (profile.region) {
    note.textContent = `Your region: ${profile.region}.`;
    only.disabled = false;
  } else {
    // The server refuses it too ("invalid"): a search that could never match.
    note.replaceChildren("Your profile has no region, so “Only mine” is off. ", el("a", { href: "/profile/" }, "Set a region"), ".");
    only.disabled = true;
    if (only.checked) document.querySelector("input[name=region][value=prefer]").checked = true;
  }
}

/** The waiting view's explanation, drawn into `root`; `show(search, ignored)` after each enter. */
export function waitingExplainer({ socket, root }) {
  let status = null;
  let widensAt = 0; // local clock ms of the next widening
  let poll = null;
  let tick = null;
  let ignored = [];

  function countdown() {
    const node = root.querySelector("#meet-widen");
    if (!node || !status) return;
    const next = status.next_step;
    if (!next) {
      node.textContent = "The search is as wide as it goes: anyone waiting in your language may come up.";
      return;
    }
    const left = Math.max(0, Math.ceil((widensAt - Date.now()) / 1000));
    const what = next.drops === "interests" ? "no shared interest needed" : "people from other regions too";
    node.textContent = left > 0 ? `The search widens in ${left} s: ${what}.` : `Widening the search now: ${what}.`;
  }

  function render() {
    if (!status || !status.waiting) return;
    const lang = languageName(status.language);
    const where = !status.region
      ? "any region (your profile has none)"
      : status.region_mode === "require"
        ? `only ${status.region}`
        : status.same_region
          ? `${status.region} first`
          : "any region";
    const n = status.others_waiting;
    const count = n === 0 ? "Nobody else is waiting" : n === 1 ? "1 other person is waiting" : `${n} other people are waiting`;
    const scope = status.same_region ? `in ${lang} in ${status.region}` : `in ${lang}`;
    root.replaceChildren(
      el("p", { id: "meet-criteria" }, `Looking for: ${status.interests.length ? status.interests.join(", ") : "anyone (no interests)"} · speaking ${lang} only · ${where}.`),
      ignored.length ? el("p", { id: "meet-ignored", class: "errors" }, `Not in the interest catalogue, ignored: ${ignored.join(", ")}.`) : "",
      el("p", { id: "meet-waiting-count" }, `${count} ${scope} who could match.`),
      el("p", { id: "meet-widen" }),
      el(
        "p",
        { id: "meet-recent", class: "muted" },
        `People you met in the last ${minutes(status.recent_partner_seconds)} are not matched with you again` +
          (status.recent_partners ? ` (${status.recent_partners} right now).` : "."),
      ),
    );
    countdown();
  }

  function apply(search) {
    status = search;
    if (!search || !search.waiting) return;
    widensAt = search.next_step ? Date.now() + search.next_step.in_seconds * 1000 : 0;
    render();
  }

  async function refresh() {
    try {
      apply(await socket.request("match.waiting", {}, { queue: false }));
    } catch {
      // the next refresh tries again
    }
  }

  return {
    show(search, ignoredInterests) {
      ignored = ignoredInterests || [];
      apply(search);
      clearInterval(poll);
      clearInterval(tick);
      poll = setInterval(refresh, ((search && search.refresh_seconds) || 5) * 1000);
      tick = setInterval(countdown, 1000);
    },
    stop() {
      clearInterval(poll);
      clearInterval(tick);
      poll = tick = null;
      status = null;
      root.replaceChildren();
    },
  };
}
