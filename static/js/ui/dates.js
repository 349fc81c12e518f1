// Dates as the reader's browser says them (Intl, the browser's locale and time zone): the day
// separators and message times of a thread, and the time of each conversation in the list.

const DAY_MS = 24 * 60 * 60 * 1000;
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** The local calendar day of `iso` as "YYYY-MM-DD" ("" without a date). */
export function dayKey(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Whole local days from `iso`'s day to today's (0 today, 1 yesterday). */
function daysAgo(iso, now = new Date()) {
  const d = new Date(iso);
  const a = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
  const b = Date.UTC(now.getFullYear(), now.getMonth(), now.getDate());
  return Math.round((b - a) / DAY_MS);
}

function capitalised(text) {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}

function sameYear(iso, now = new Date()) {
  return new Date(iso).getFullYear() === now.getFullYear();
}

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A day separator's text: "Today", "Yesterday", else the date ("Monday, 30 November"). */
export function formatDay(iso) {
  const ago = daysAgo(iso);
  if (ago === 0 || ago === 1) return capitalised(relative.format(-ago, "day"));
  return new Date(iso).toLocaleDateString([], {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: sameYear(iso) ? undefined : "numeric",
  });
}

/** A message's time: "14:05" today, the date before it on older messages. */
export function formatMessageTime(iso) {
  if (!iso) return "";
  const ago = daysAgo(iso);
  if (ago === 0) return time(iso);
  const day = ago === 1 ? capitalised(relative.format(-1, "day")) : formatShortDate(iso);
  return `${day}, ${time(iso)}`;
}

function formatShortDate(iso) {
  return new Date(iso).toLocaleDateString([], { day: "numeric", month: "short", year: sameYear(iso) ? undefined : "numeric" });
}

/** A conversation's last activity in the list: "14:05" today, "Yesterday", else "30 Nov". */
export function formatListTime(iso) {
  if (!iso) return "";
  const ago = daysAgo(iso);
  if (ago === 0) return time(iso);
  if (ago === 1) return capitalised(relative.format(-1, "day"));
  return formatShortDate(iso);
}

/** The full local date and time, for a `title` (hover) and screen readers. */
export function formatFull(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], { dateStyle: "full", timeStyle: "short" });
}
