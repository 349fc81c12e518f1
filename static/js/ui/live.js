// Live: numbers pushed by the beat-driven `live.stats` task (docs/protocol.md, "Live feed"),
// with a small inline-SVG chart of the last samples. No external library or CDN.

import { bindConnectionBadge, createSocket, el, pageData } from "./common.js";
import { trackUnreadTotal } from "./unread.js";

const page = pageData();
const socket = createSocket(page);
trackUnreadTotal(socket, page.user_id);
window.switchboard = socket;

const SAMPLES = 60; // points kept for the chart
const history = []; // [{at, messages, matches}]
let updates = 0;
let lastAt = "";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(stats) {
  if (!stats || (stats.at && stats.at <= lastAt)) return; // older than what is shown
  lastAt = stats.at || lastAt;
  updates += 1;
  $("live").dataset.updates = String(updates);
  $("stat-online").textContent = String(stats.users_online ?? "–");
  $("stat-waiting").textContent = String(stats.waiting_in_pool ?? "–");
  $("stat-matches").textContent = String(stats.matches_last_minute ?? "–");
  $("stat-messages").textContent = String(stats.messages_last_minute ?? "–");
  const at = stats.at ? new Date(stats.at) : new Date();
  $("live-updated").textContent = `Updated ${at.toLocaleTimeString()}`;
  const trending = stats.trending || [];
  $("trending").replaceChildren(...trending.map((t) => el("li", { dataset: { interest: t.interest } }, t.interest, el("small", { class: "muted" }, ` · ${t.score}`))));
  $("trending-empty").hidden = trending.length > 0;
  history.push({ at, messages: stats.messages_last_minute || 0, matches: stats.matches_last_minute || 0 });
  if (history.length > SAMPLES) history.shift();
  drawChart();
}

function drawChart() {
  const W = 600;
  const H = 200;
  const PAD = 28;
  const max = Math.max(1, ...history.map((h) => Math.max(h.messages, h.matches)));
  const x = (i) => PAD + (i * (W - 2 * PAD)) / Math.max(1, SAMPLES - 1);
  const y = (v) => H - PAD - (v * (H - 2 * PAD)) / max;
  const line = (key) => history.map((h, i) => `${x(i).toFixed(1)},${y(h[key]).toFixed(1)}`).join(" ");
  const last = history[history.length - 1];
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": last ? `Chart of the last ${history.length} samples; now ${last.messages} messages and ${last.matches} matches per minute` : "No data yet",
  });
  chart.append(
    svg("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, stroke: "#c9cfdb" }),
    svg("line", { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, stroke: "#c9cfdb" }),
    svg("text", { x: 4, y: PAD + 4, "font-size": 11, fill: "#5b6475" }, String(max)),
    svg("text", { x: 4, y: H - PAD + 4, "font-size": 11, fill: "#5b6475" }, "0"),
  );
  if (history.length) {
    chart.append(
      svg("polyline", { points: line("messages"), fill: "none", "stroke-width": 2.5, class: "line-a", stroke: "currentColor" }),
      svg("polyline", { points: line("matches"), fill: "none", "stroke-width": 2.5, class: "line-b", stroke: "currentColor" }),
    );
  }
  $("chart").replaceChildren(chart);
}

async function subscribe() {
  try {
    const reply = await socket.request("live.subscribe", {});
    show(reply.stats);
    $("live").dataset.subscribed = "true";
  } catch (err) {
    $("live-updated").textContent = `Could not subscribe: ${err.message}`;
  }
}

socket.on("live.stats", show);
// A subscription ends with its connection: subscribe again after every (re)connect.
socket.onOpen(subscribe);
bindConnectionBadge(socket);
drawChart();
socket.connect();
