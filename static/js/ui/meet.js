// Meet: choose interests, wait (with elapsed time), get matched, talk by text and WebRTC video
// (signalled over the socket: docs/subsystems/webrtc.md), next / hang up / block / report.

import { State } from "../switchboard.js";
import { api, bindConnectionBadge, createSocket, el, formatElapsed, formatTime, pageData, toast } from "./common.js";
import { interestPicker } from "./interests.js";
import { trackUnreadTotal } from "./unread.js";
import { keepInTouch } from "./meetkeep.js";
import { describeSetup, waitingExplainer } from "./meetwaiting.js";

const page = pageData();
const socket = createSocket(page);
trackUnreadTotal(socket, page.user_id);
window.switchboard = socket;

const $ = (id) => document.getElementById(id);
const ui = {
  root: $("meet"),
  setup: $("meet-setup"),
  waiting: $("meet-waiting"),
  matched: $("meet-matched"),
  ended: $("meet-ended"),
  error: $("meet-error"),
  elapsed: $("meet-elapsed"),
  waitingInterests: $("meet-waiting-interests"),
  partner: $("partner-name"),
  partnerMeta: $("partner-meta"),
  shared: $("shared-interests"),
  log: $("meet-log"),
  logBox: $("meet-log-box"),
  say: $("meet-say"),
  input: $("meet-input"),
  remote: $("remote-video"),
  local: $("local-video"),
  videos: $("videos"),
  note: $("video-note"),
  mute: $("btn-mute"),
  camera: $("btn-camera"),
  endedText: $("meet-ended-text"),
};

const picker = interestPicker({
  input: $("meet-interest-input"),
  chips: $("meet-interests"),
  suggestions: $("meet-interest-suggestions"),
  max: page.limits.interests_per_user || 20,
});

// What the waiting view explains (criteria, who could match, the next widening).
const explainer = waitingExplainer({ socket, root: $("meet-search") });

let phase = "setup"; // setup | waiting | matched | ended
let match = null; // {id, partner, shared, initiator}
let waitStarted = 0;
let waitTicker = null;
let refreshTimer = null;
let call = null; // {pc, match, offer, local, remoteSet, pendingIce, chain, ready}
let rejoinId = null; // this view's own match.rejoined (after match.current with rejoin)
const earlySignals = []; // signals that arrived before the peer connection existed

// For the console and the end-to-end tests: the current peer connection and match.
window.meet = {
  get pc() {
    return call?.pc || null;
  },
  get match() {
    return match;
  },
  get phase() {
    return phase;
  },
};

function setPhase(p) {
  phase = p;
  ui.root.dataset.phase = p;
  ui.setup.hidden = p !== "setup";
  ui.waiting.hidden = p !== "waiting";
  ui.matched.hidden = p !== "matched";
  ui.ended.hidden = p !== "ended";
  if (p !== "waiting") stopWaiting();
}

function region() {
  return document.querySelector("input[name=region]:checked").value;
}

function criteria() {
  return { interests: picker.values(), region: region() };
}

// -- waiting ------------------------------------------------------------------------------------

function startWaiting() {
  setPhase("waiting");
  waitStarted = Date.now();
  ui.elapsed.textContent = "0:00";
  clearInterval(waitTicker);
  waitTicker = setInterval(() => {
    ui.elapsed.textContent = formatElapsed(Date.now() - waitStarted);
  }, 1000);
  ui.waiting.querySelector("button").focus();
}

function stopWaiting() {
  explainer.stop();
  clearInterval(waitTicker);
  clearTimeout(refreshTimer);
  waitTicker = refreshTimer = null;
}

function showError(err) {
  let text = err.message || String(err);
  if (err.code === "rate_limited" && err.retry_after) text = `Too many searches: try again in ${Math.ceil(err.retry_after)} s.`;
  ui.error.textContent = text;
}

function onEnterReply(reply) {
  if (phase !== "waiting") return; // matched (event first) or cancelled meanwhile
  const used = reply.interests || [];
  ui.waitingInterests.textContent = used.length ? `Searching with: ${used.join(", ")}` : "Searching with no interests: anyone may come up.";
  if (reply.status === "waiting") {
    explainer.show(reply.search, reply.ignored_interests);
    // The ticket expires unless refreshed; entering again keeps our place in line.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(enter, (reply.refresh_seconds || 40) * 1000);
  }
}

async function enter() {
  if (phase !== "waiting") return;
  try {
    onEnterReply(await socket.request("match.enter", criteria()));
  } catch (err) {
    if (phase !== "waiting") return;
    if (err.code === "conflict" && err.match_id) {
      // Still in a match (from another tab, or one just made): go back to it here.
      if (!(await rejoin().catch(() => false)) && phase === "waiting") refreshTimer = setTimeout(enter, 1000);
      return;
    }
    if (err.retryable && err.code !== "rate_limited") {
      refreshTimer = setTimeout(enter, 2000);
      return;
    }
    setPhase("setup");
    showError(err);
  }
}

$("meet-find").addEventListener("click", () => {
  ui.error.textContent = "";
  picker.commit();
  startWaiting();
  enter();
});

$("meet-cancel").addEventListener("click", async () => {
  setPhase("setup");
  try {
    await socket.request("match.cancel", {});
  } catch {
    // the ticket expires anyway
  }
});

// -- matched ------------------------------------------------------------------------------------

function partnerName() {
  return match?.partner ? match.partner.display_name || match.partner.username : "your match";
}

// Show a match and start its call; `offer`: this side makes the offer (docs/subsystems/webrtc.md).
function showMatch(d, offer) {
  if (call) endCall();
  match = { id: d.match_id, partner: d.partner || {}, shared: d.shared_interests || [], initiator: !!d.initiator };
  ui.partner.textContent = partnerName();
  const meta = [match.partner.language, match.partner.region].filter(Boolean).join(" · ");
  ui.partnerMeta.textContent = meta;
  ui.shared.replaceChildren(...(match.shared.length ? match.shared.map((s) => el("li", { class: "chip" }, s)) : [el("li", { class: "muted" }, "nothing in particular: say hi anyway")]));
  ui.log.replaceChildren();
  ui.input.value = "";
  setPhase("matched");
  ui.input.focus();
  startCall(match, offer);
}

socket.on("match.found", (d) => {
  if (match?.id === d.match_id) return;
  if (phase !== "waiting") return; // another view of mine searched: it shows the match
  showMatch(d, d.initiator);
});

// A reload or another tab comes back to the open match: the returning view waits for an
// offer; the one that stayed makes it on match.rejoined.
async function rejoin() {
  const reply = await socket.request("match.current", { rejoin: true });
  if (!reply.match) return false;
  rejoinId = reply.rejoin_id || null;
  showMatch(reply.match, false);
  return true;
}

socket.on("match.rejoined", (d) => {
  if (!match || d.match_id !== match.id) return;
  if (d.user_id === page.user_id) {
    if (d.rejoin_id === rejoinId) return; // this view's own
    endCall(); // another view of mine took the room
    match = null;
    ui.endedText.textContent = "This chat continues in another tab or window.";
    setPhase("ended");
    return;
  }
  // Both came back at once: both views wait fresh, and only the initiator offers.
  if (call && !call.offer && !call.remoteSet && !match.initiator) return;
  startCall(match, true);
});

socket.on("match.ended", (d) => {
  if (!match || d.match_id !== match.id) return;
  const name = partnerName();
  const byMe = d.by_user_id === page.user_id;
  finish(
    byMe
      ? "The chat has ended."
      : d.reason === "skip"
        ? `${name} moved on.`
        : d.reason === "partner_left"
          ? `${name} left.`
          : d.reason === "expired"
            ? "The chat expired."
            : "The chat has ended.",
  );
});

socket.on("match.message", (d) => {
  if (!match || d.match_id !== match.id) return;
  addLine(partnerName(), d.text, d.sent_at, false);
});

function addLine(who, text, at, mine) {
  ui.log.append(
    el(
      "li",
      { class: "msg" + (mine ? " mine" : "") },
      el("div", { class: "msg-meta" }, el("span", { class: "msg-author" }, who), " ", el("time", {}, formatTime(at))),
      el("div", { class: "msg-body" }, text),
    ),
  );
  ui.logBox.scrollTop = ui.logBox.scrollHeight;
}

ui.say.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ui.input.value;
  if (!text.trim() || !match) return;
  ui.input.value = "";
  try {
    const reply = await socket.request("match.say", { match_id: match.id, text });
    addLine("You", text, reply.sent_at, true);
  } catch (err) {
    ui.input.value = text;
    toast(`Not sent: ${err.message}`, "error");
  }
});

function finish(text) {
  endCall();
  match = null;
  ui.endedText.textContent = text;
  setPhase("ended");
  $("meet-again").focus();
}

async function leave({ requeue }) {
  if (!match) return;
  const m = match;
  endCall();
  match = null;
  if (requeue) startWaiting();
  else {
    ui.endedText.textContent = "You left the chat.";
    setPhase("ended");
  }
  try {
    const reply = await socket.request("match.skip", { match_id: m.id, requeue, ...(requeue ? criteria() : {}) });
    if (requeue && reply.enter) onEnterReply(reply.enter);
  } catch (err) {
    if (requeue) {
      setPhase("setup");
      showError(err);
    }
  }
}

$("btn-next").addEventListener("click", () => leave({ requeue: true }));
$("btn-hangup").addEventListener("click", () => leave({ requeue: false }));
$("meet-again").addEventListener("click", () => {
  startWaiting();
  enter();
});
$("meet-change").addEventListener("click", () => setPhase("setup"));

async function block() {
  if (!match) return;
  const m = match;
  const name = partnerName();
  try {
    await socket.request("match.block", { match_id: m.id });
    if (match?.id === m.id) finish(`You blocked ${name}. You will not be matched again.`);
    else ui.endedText.textContent = `You blocked ${name}. You will not be matched again.`;
  } catch (err) {
    toast(`Could not block: ${err.message}`, "error");
  }
}
$("btn-block").addEventListener("click", block);
keepInTouch({ socket, button: $("btn-keep"), status: $("meet-keep"), getMatch: () => match, partnerName });

const reportDialog = $("report-dialog");
$("btn-report").addEventListener("click", () => reportDialog.showModal());
$("report-cancel").addEventListener("click", () => reportDialog.close());
$("report-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!match) return reportDialog.close();
  const text = $("report-text").value.trim();
  try {
    await socket.request("match.report", { match_id: match.id, reason: $("report-reason").value, ...(text ? { text } : {}) });
    reportDialog.close();
    toast("Thank you: the report was sent.");
    if ($("report-block").checked) await block();
  } catch (err) {
    toast(`Could not report: ${err.message}`, "error");
  }
});

// -- video ---------------------------------------------------------------------------------------

let iceCache = null; // {servers, until}

async function iceServers() {
  if (iceCache && iceCache.until > Date.now()) return iceCache.servers;
  try {
    const body = await api("GET", "/api/meet/ice-servers");
    iceCache = { servers: body.ice_servers || [], until: Date.now() + ((body.ttl || 600) * 1000) / 2 };
    return iceCache.servers;
  } catch {
    return []; // host candidates still connect peers on one network
  }
}

function note(text) {
  ui.note.textContent = text;
}

async function localMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    note("Video needs a secure (https) page: text chat only.");
    return null;
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      note("Camera and microphone are blocked: allow them in the site settings to be seen and heard. You can still see your match and chat.");
      return null;
    }
    // No camera (or it is busy): try the microphone alone.
    try {
      const audio = await navigator.mediaDevices.getUserMedia({ audio: true });
      note("No camera found: audio only.");
      return audio;
    } catch {
      note("No camera or microphone found: you can still see your match and chat.");
      return null;
    }
  }
}

function signal(m, kind, payload) {
  socket.request("match.signal", { match_id: m.id, kind, payload }).catch((err) => console.warn("signal", kind, err.code));
}

let callGeneration = 0; // a call started later wins over one still starting

async function startCall(m, offer) {
  if (call) endCall();
  const generation = ++callGeneration;
  ui.videos.dataset.connection = "new";
  note("Connecting video…");
  const servers = await iceServers();
  if (match !== m || generation !== callGeneration) return;
  const pc = new RTCPeerConnection({ iceServers: servers });
  call = { pc, match: m, offer, local: null, remoteSet: false, pendingIce: [], chain: Promise.resolve(), ready: false };
  const c = call;
  pc.onicecandidate = (e) => signal(m, "ice", e.candidate ? e.candidate.toJSON() : null);
  pc.ontrack = (e) => {
    ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]);
  };
  pc.onconnectionstatechange = () => {
    ui.videos.dataset.connection = pc.connectionState;
    const text = { connected: "", connecting: "Connecting video…", disconnected: "Video interrupted…", failed: "Video could not connect: text chat still works." }[pc.connectionState];
    if (text !== undefined && call === c) note(text);
  };
  const local = await localMedia();
  if (call !== c) {
    local?.getTracks().forEach((t) => t.stop());
    return;
  }
  c.local = local;
  if (local) {
    for (const track of local.getTracks()) pc.addTrack(track, local);
    ui.local.srcObject = local;
  }
  updateMediaButtons();
  if (offer) {
    // Receive both kinds even when we send nothing (camera blocked).
    if (!local?.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
    if (!local?.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
    const description = await pc.createOffer();
    await pc.setLocalDescription(description);
    signal(m, "offer", { sdp: description.sdp });
  }
  c.ready = true;
  for (const s of earlySignals.splice(0)) handleSignal(s);
}

function handleSignal(d) {
  if (!match || d.match_id !== match.id) return;
  if (!call || call.match !== match || !call.ready) {
    earlySignals.push(d);
    return;
  }
  const c = call;
  // One at a time, in order: an answer must not race the candidates that follow it.
  c.chain = c.chain.then(() => applySignal(c, d)).catch((err) => console.warn("signal failed", d.kind, err));
}

async function applySignal(c, d) {
  const pc = c.pc;
  if (call !== c || pc.signalingState === "closed") return;
  if (d.kind === "offer" || d.kind === "answer") {
    await pc.setRemoteDescription({ type: d.kind, sdp: d.payload.sdp });
    c.remoteSet = true;
    for (const cand of c.pendingIce.splice(0)) await pc.addIceCandidate(cand).catch(() => {});
    if (d.kind === "offer") {
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      signal(c.match, "answer", { sdp: answer.sdp });
    }
  } else if (d.kind === "ice") {
    if (!d.payload) return; // end of candidates: nothing to do
    if (!c.remoteSet) c.pendingIce.push(d.payload);
    else await pc.addIceCandidate(d.payload).catch(() => {});
  }
}

socket.on("match.signal", handleSignal);

function endCall() {
  earlySignals.length = 0;
  if (!call) return;
  const c = call;
  call = null;
  try {
    c.pc.close();
  } catch {
    // already closed
  }
  c.local?.getTracks().forEach((t) => t.stop());
  ui.remote.srcObject = null;
  ui.local.srcObject = null;
  ui.videos.dataset.connection = "closed";
  note("");
  setPressed(ui.mute, false, "Mute", "Unmute");
  setPressed(ui.camera, false, "Camera off", "Camera on");
}

function setPressed(button, pressed, off, on) {
  button.setAttribute("aria-pressed", pressed ? "true" : "false");
  button.textContent = pressed ? on : off;
}

function updateMediaButtons() {
  const local = call?.local;
  ui.mute.disabled = !local?.getAudioTracks().length;
  ui.camera.disabled = !local?.getVideoTracks().length;
}

ui.mute.addEventListener("click", () => {
  const tracks = call?.local?.getAudioTracks() || [];
  const muted = ui.mute.getAttribute("aria-pressed") !== "true";
  for (const t of tracks) t.enabled = !muted;
  setPressed(ui.mute, muted, "Mute", "Unmute");
});

ui.camera.addEventListener("click", () => {
  const tracks = call?.local?.getVideoTracks() || [];
  const off = ui.camera.getAttribute("aria-pressed") !== "true";
  for (const t of tracks) t.enabled = !off;
  setPressed(ui.camera, off, "Camera off", "Camera on");
});

// -- start ----------------------------------------------------------------------------------------

bindConnectionBadge(socket);
socket.onOpen(({ reconnect }) => {
  // The pool forgets a ticket when its connection closes: enter again after a reconnect.
  if (reconnect && phase === "waiting") enter();
  // A new socket counts for the room once it says so (or the match ends after the grace).
  if (reconnect && phase === "matched") {
    const m = match;
    socket
      .request("match.current", {})
      .then((reply) => {
        if (match === m && reply.match?.match_id !== m.id) finish("The chat has ended.");
      })
      .catch(() => {});
  }
  // A reload (or a new tab) mid-call goes straight back to the open match.
  if (!reconnect && phase === "setup") rejoin().catch(() => {});
});
socket.onState((state) => {
  $("meet-find").disabled = state === State.UNAUTHORIZED || state === State.FORBIDDEN;
});
window.addEventListener("pagehide", () => endCall());

setPhase("setup");
api("GET", "/api/profile")
  .then((profile) => {
    if (!picker.values().length) picker.set(profile.interests || []);
    describeSetup(profile);
  })
  .catch(() => {});
socket.connect();
