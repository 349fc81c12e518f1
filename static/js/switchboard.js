// Switchboard browser client: one multiplexed WebSocket per page (docs/client.md).
//
// Shaped like Phoenix's JS client: a Socket with named states, request/reply matched by
// `ref` with a timer per request, event subscriptions, reconnect with full-jitter
// exponential back-off, a heartbeat whose missing reply forces a reconnect, and resume
// (per-conversation cursors sent in `sync`: the last seq and the last change, so edits and
// deletes made while away are replayed too). On top of that, an outbox: messages written
// while offline (or whose reply never came) are kept, persisted, and sent again with the
// same client_id, which the server stores once (docs/protocol.md, section 6).
//
// No dependencies, no build step: `import { Socket, State } from "/static/js/switchboard.js"`.

export const State = Object.freeze({
  CONNECTING: "connecting", // first connection attempt in progress
  OPEN: "open", // hello received and `sync` answered: live
  RECONNECTING: "reconnecting", // lost; waiting for the back-off timer or a new attempt
  OFFLINE: "offline", // the browser says there is no network; retries when it returns
  CLOSED: "closed", // disconnect() was called; nothing happens until connect()
  UNAUTHORIZED: "unauthorized", // closed 4401: credentials missing, bad or expired
  FORBIDDEN: "forbidden", // closed 4403: this page's origin is not allowed
  SUSPENDED: "suspended", // closed 4451: a moderator suspended or banned the account
});

// Close codes of docs/protocol.md section 1.
export const CloseCode = Object.freeze({
  UNAUTHENTICATED: 4401,
  ORIGIN_FORBIDDEN: 4403,
  RATE_LIMITED: 4429,
  ACCOUNT_SUSPENDED: 4451,
  // Ours (browsers may only send 1000 or 3000-4999): the heartbeat reply was late.
  HEARTBEAT_TIMEOUT: 4000,
});

export const DEFAULTS = Object.freeze({
  requestTimeoutMs: 10000,
  // A server that goes silent (frozen, or a dead TCP path the browser has not noticed) is
  // taken for lost within heartbeatIntervalMs + heartbeatTimeoutMs (10 s): a `ping` after
  // that much silence, and no reply to it in time forces a reconnect.
  heartbeatIntervalMs: 5000,
  heartbeatTimeoutMs: 5000,
  backoffBaseMs: 500, // full jitter: sleep(random(0, min(max, base * 2 ** attempt)))
  backoffMaxMs: 30000,
  connectTimeoutMs: 10000, // socket open + hello; past this the attempt counts as failed
  outboxRetryMs: 5000, // an outbox entry whose send failed softly is tried again after this
  syncChunk: 500, // conversations per `sync` (LIMITS.RESUME_MAX_CONVERSATIONS)
});

// Error codes the server may answer after which the same request may succeed later.
const RETRYABLE = new Set(["internal", "rate_limited", "timeout", "offline", "closed"]);

/** A request's failure: `code` is a protocol error code or one of timeout/offline/closed. */
export class RequestError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "RequestError";
    this.code = code;
    Object.assign(this, extra);
  }
  get retryable() {
    return RETRYABLE.has(this.code);
  }
}

/** Full-jitter exponential back-off (AWS architecture blog): a random delay in [0, cap). */
export function backoffDelay(attempt, baseMs = DEFAULTS.backoffBaseMs, maxMs = DEFAULTS.backoffMaxMs) {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

function defaultUrl(path = "/ws") {
  const loc = globalThis.location;
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}${path}`;
}

function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/**
 * Persistent list of unsent messages. Keyed by client_id; survives reloads when given a
 * Storage (localStorage), lives in memory otherwise.
 */
class Outbox {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    this.items = new Map();
    if (storage && key) {
      try {
        for (const item of JSON.parse(storage.getItem(key) || "[]")) {
          if (item && typeof item.client_id === "string") this.items.set(item.client_id, item);
        }
      } catch {
        // A corrupt entry must not break the page: start empty.
      }
    }
  }
  save() {
    if (!this.storage || !this.key) return;
    try {
      if (this.items.size) this.storage.setItem(this.key, JSON.stringify([...this.items.values()]));
      else this.storage.removeItem(this.key);
    } catch {
      // Storage full or denied: the outbox still works in memory.
    }
  }
  add(item) {
    this.items.set(item.client_id, item);
    this.save();
  }
  delete(clientId) {
    const had = this.items.delete(clientId);
    if (had) this.save();
    return had;
  }
  list() {
    return [...this.items.values()];
  }
}

/**
 * One WebSocket to a Switchboard server.
 *
 *   const socket = new Socket({ outboxKey: `sb.outbox.${userId}` });
 *   socket.onState((state) => ...);
 *   socket.on("message.new", (msg) => ...);
 *   socket.connect();
 *   const reply = await socket.request("ping");
 *   const { clientId, done } = socket.send(conversationId, "hello");
 */
export class Socket {
  constructor(options = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.url = options.url || defaultUrl(options.path);
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    this.ticket = options.ticket || null; // async () => ticket string, for other origins
    this.state = State.CLOSED;
    this.hello = null;
    this.userId = null;
    this.attempt = 0; // failed attempts since the last OPEN (drives the back-off)
    this.lastClose = null; // {code, reason} of the last close, for the UI
    this.ws = null;
    this.refCounter = 0;
    this.pending = new Map(); // ref -> {resolve, reject, timer, type}
    this.waiting = []; // requests made while not OPEN: sent when OPEN, or time out
    this.handlers = new Map(); // event type -> Set(fn)
    this.stateHandlers = new Set();
    this.openHandlers = new Set();
    this.outboxHandlers = new Set();
    this.gapHandlers = new Set();
    this.staleHandlers = new Set();
    this.cursors = new Map(); // conversation id -> highest seq delivered to the app
    this.changeCursors = new Map(); // conversation id -> highest change_seq (edit/delete) held
    this.outbox = new Outbox(
      options.storage === undefined ? safeLocalStorage() : options.storage,
      options.outboxKey || null,
    );
    this.inFlight = new Set(); // client_ids whose message.send awaits a reply
    this.outboxWaiters = new Map(); // client_id -> [{resolve, reject}]
    this.heartbeatArmed = false; // a ping is scheduled for the next silence (none is in flight)
    this.timers = { reconnect: null, heartbeat: null, heartbeatTimeout: null, connect: null, outbox: null };
    this.bucket = { tokens: 60, burst: 60, rate: 20, stamp: now() }; // updated from hello
    this.sendQueue = []; // frames waiting for a rate token
    this.sendTimer = null;
    this.wantConnected = false;
    this._onOnline = () => {
      if (this.wantConnected && this.state === State.OFFLINE) this._reconnectNow();
    };
    this._onOffline = () => {
      if (this.wantConnected && this.state !== State.OPEN) this._setState(State.OFFLINE);
    };
    globalThis.addEventListener?.("online", this._onOnline);
    globalThis.addEventListener?.("offline", this._onOffline);
  }

  // -- subscriptions --------------------------------------------------------------------

  /** Call `fn(data, frame)` for every pushed event of `type` ("*" for all); returns an unsubscribe. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  /** Call `fn(state, previous)` on every state change. */
  onState(fn) {
    this.stateHandlers.add(fn);
    return () => this.stateHandlers.delete(fn);
  }

  /**
   * Call `fn({hello, sync, joined, requests, left, truncated, reconnect})` after every
   * successful connect + sync: `sync` is the reply's per-conversation summary; `joined` and
   * `requests` the summaries (as `GET /api/conversations`, `?state=pending`) of the
   * conversations the app had no cursor for; `left` the ids it had a cursor for and is no
   * longer in (also dispatched as `conversation.left`); `truncated`: more than the lists
   * hold, re-list over REST.
   */
  onOpen(fn) {
    this.openHandlers.add(fn);
    return () => this.openHandlers.delete(fn);
  }

  /** Call `fn(items)` whenever the outbox changes (items: {client_id, conversation_id, body, created_at}). */
  onOutbox(fn) {
    this.outboxHandlers.add(fn);
    return () => this.outboxHandlers.delete(fn);
  }

  /** Call `fn({conversation_id, after_seq, latest_seq})` when messages must be fetched by REST. */
  onGap(fn) {
    this.gapHandlers.add(fn);
    return () => this.gapHandlers.delete(fn);
  }

  /**
   * Call `fn({conversation_id, after_change_seq, latest_change_seq})` when more edits and
   * deletes were missed than the server replays: re-read the messages shown over REST.
   */
  onStale(fn) {
    this.staleHandlers.add(fn);
    return () => this.staleHandlers.delete(fn);
  }

  // -- cursors ---------------------------------------------------------------------------

  /**
   * Record that the app holds every message of `conversationId` up to `seq` and, when given,
   * every edit and delete up to `changeSeq` (a snapshot's `last_change_seq`); never lowers.
   */
  setCursor(conversationId, seq, changeSeq) {
    const id = Number(conversationId);
    if ((this.cursors.get(id) ?? -1) < seq) this.cursors.set(id, seq);
    if (typeof changeSeq === "number") this._raiseChange(id, changeSeq);
  }

  _raiseChange(id, changeSeq) {
    if ((this.changeCursors.get(id) ?? -1) < changeSeq) this.changeCursors.set(id, changeSeq);
  }

  cursor(conversationId) {
    return this.cursors.get(Number(conversationId));
  }

  // -- connection ------------------------------------------------------------------------

  connect() {
    this.wantConnected = true;
    if (this.ws || this.state === State.OPEN) return;
    this.attempt = 0;
    this._open(State.CONNECTING);
  }

  /** Close for good (until connect()); pending requests fail with code "closed". */
  disconnect() {
    this.wantConnected = false;
    this._clearTimers();
    this._dropSocket(1000, "client disconnect");
    this._failAll("closed", "The socket was closed.");
    this._setState(State.CLOSED);
  }

  get isOpen() {
    return this.state === State.OPEN;
  }

  async _open(state) {
    this._setState(state);
    if (globalThis.navigator && globalThis.navigator.onLine === false) {
      this._setState(State.OFFLINE);
      this._scheduleReconnect(); // also retried at once on the "online" event
      return;
    }
    let url = this.url;
    if (this.ticket) {
      try {
        const t = await this.ticket();
        url += (url.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(t);
      } catch {
        this._scheduleReconnect();
        return;
      }
      if (!this.wantConnected) return;
    }
    let ws;
    try {
      ws = new this.WebSocketImpl(url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.hello = null;
    this.timers.connect = setTimeout(() => this._lost(ws, CloseCode.HEARTBEAT_TIMEOUT, "connect timeout"), this.opts.connectTimeoutMs);
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._lost(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  _onFrame(ws, text) {
    if (ws !== this.ws) return;
    // Anything heard proves the server alive: the next ping waits for a new silence.
    if (this.heartbeatArmed) this._startHeartbeat(ws);
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "hello") {
      this._onHello(ws, frame.data || {});
      return;
    }
    if (frame.type === "reply") {
      const p = this.pending.get(frame.ref);
      if (!p) return; // a reply to a request that already timed out, or ref null
      this.pending.delete(frame.ref);
      clearTimeout(p.timer);
      if (frame.ok) p.resolve(frame.data || {});
      else {
        const err = frame.error || {};
        const { code, message, ...extra } = err;
        p.reject(new RequestError(code || "internal", message || "Request failed.", extra));
      }
      return;
    }
    this._dispatch(frame.type, frame.data || {}, frame);
  }

  _dispatch(type, data, frame) {
    if (type === "message.new") {
      const cid = data.conversation_id;
      const cur = this.cursors.get(cid);
      if (cur !== undefined && data.seq <= cur) return; // already delivered: never twice
      if (cur !== undefined && data.seq > cur + 1) {
        // Should not happen (the server fills gaps per connection), but the app's cursor
        // may be ahead of what the server knew: let it fetch the hole over REST.
        this._emitGap({ conversation_id: cid, after_seq: cur, latest_seq: data.seq - 1 });
      }
      this.cursors.set(cid, data.seq);
      this._settleOwn(data);
    } else if (type === "sync.too_far") {
      this._emitGap(data);
      this.setCursor(data.conversation_id, data.latest_seq);
    } else if (type === "message.updated") {
      // Sent once each, in change order (the server reads a gap): the highest is the cursor.
      if (typeof data.change_seq === "number") this._raiseChange(data.conversation_id, data.change_seq);
    } else if (type === "sync.changes_too_far") {
      this._raiseChange(data.conversation_id, data.latest_change_seq);
      this._emit(this.staleHandlers, data);
    } else if (type === "conversation.left") {
      this.cursors.delete(data.conversation_id);
      this.changeCursors.delete(data.conversation_id);
    }
    for (const key of [type, "*"]) {
      for (const fn of this.handlers.get(key) || []) {
        try {
          fn(data, frame);
        } catch (e) {
          console.error(e);
        }
      }
    }
  }

  async _onHello(ws, hello) {
    clearTimeout(this.timers.connect);
    this.hello = hello;
    this.userId = hello.user_id ?? null;
    const lim = hello.limits || {};
    if (lim.rate_per_second) {
      // Stay under the server's frame rate (close 4429) with a margin.
      this.bucket.rate = lim.rate_per_second * 0.8;
      this.bucket.burst = Math.max(1, Math.floor((lim.rate_burst || 10) * 0.8));
      this.bucket.tokens = Math.min(this.bucket.tokens, this.bucket.burst);
    }
    let syncReply = {};
    let lists = { joined: [], requests: [], left: [], truncated: false };
    try {
      const entries = [...this.cursors.entries()];
      const chunk = this.opts.syncChunk;
      const frames = Math.max(1, Math.ceil(entries.length / chunk));
      for (let f = 0; f < frames; f += 1) {
        const conversations = {};
        for (const [id, seq] of entries.slice(f * chunk, (f + 1) * chunk)) {
          const change = this.changeCursors.get(id);
          conversations[String(id)] = change === undefined ? seq : { seq, change_seq: change };
        }
        // `more`: the server lists what this app has no cursor for after the last frame.
        const data = f < frames - 1 ? { conversations, more: true } : { conversations };
        const r = await this._push(ws, "sync", data, this.opts.requestTimeoutMs);
        if (ws !== this.ws) return;
        Object.assign(syncReply, r.conversations || {});
        for (const [id, summary] of Object.entries(r.conversations || {})) {
          // Every change up to the head is now held: replayed, or read with the messages.
          if (conversations[id]?.change_seq !== undefined) this._raiseChange(Number(id), summary.latest_change_seq);
        }
        lists.left.push(...(r.left || []));
        if (f === frames - 1) lists = { ...lists, joined: r.joined || [], requests: r.requests || [], truncated: !!r.truncated };
      }
    } catch {
      if (ws === this.ws) this._lost(ws, CloseCode.HEARTBEAT_TIMEOUT, "sync failed");
      return;
    }
    if (ws !== this.ws) return;
    for (const conv of lists.joined) this.setCursor(conv.id, conv.last_seq, conv.last_change_seq);
    for (const id of lists.left) this._dispatch("conversation.left", { conversation_id: id });
    const reconnect = this._everOpened === true;
    this._everOpened = true;
    this.attempt = 0;
    this._setState(State.OPEN);
    this._startHeartbeat(ws);
    // Requests made while we were away go out now, then the outbox.
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) this._sendWaiting(w);
    this._flushOutbox();
    for (const fn of this.openHandlers) {
      try {
        fn({ hello, sync: syncReply, ...lists, reconnect });
      } catch (e) {
        console.error(e);
      }
    }
  }

  _lost(ws, code, reason) {
    if (ws !== this.ws) return;
    this._dropSocket(CloseCode.HEARTBEAT_TIMEOUT, reason || "lost");
    this.lastClose = { code, reason: reason || "" };
    this._failInFlight();
    if (!this.wantConnected) return;
    if (code === CloseCode.UNAUTHENTICATED) {
      // Retrying with the same credentials cannot work: say so, and wait for connect().
      this.wantConnected = false;
      this._failAll("unauthorized", "Not signed in.");
      this._setState(State.UNAUTHORIZED);
      return;
    }
    if (code === CloseCode.ORIGIN_FORBIDDEN) {
      this.wantConnected = false;
      this._failAll("forbidden", "This origin may not connect.");
      this._setState(State.FORBIDDEN);
      return;
    }
    if (code === CloseCode.ACCOUNT_SUSPENDED) {
      // Every retry would be refused until the sanction ends: lastClose.reason says when.
      this.wantConnected = false;
      this._failAll("suspended", "This account is suspended.");
      this._setState(State.SUSPENDED);
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    clearTimeout(this.timers.reconnect);
    const offline = globalThis.navigator && globalThis.navigator.onLine === false;
    this._setState(offline ? State.OFFLINE : State.RECONNECTING);
    let delay = backoffDelay(this.attempt, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
    // After a rate-limit close wait at least a second so the bucket refills.
    if (this.lastClose?.code === CloseCode.RATE_LIMITED) delay = Math.max(delay, 1000);
    this.attempt += 1;
    this.timers.reconnect = setTimeout(() => {
      if (this.wantConnected && !this.ws) this._open(State.RECONNECTING);
    }, delay);
  }

  /** Skip the back-off wait (e.g. on the browser's "online" event or a "Retry now" button). */
  reconnectNow() {
    this.wantConnected = true;
    this._reconnectNow();
  }

  _reconnectNow() {
    clearTimeout(this.timers.reconnect);
    if (this.ws) {
      this._dropSocket(1000, "reconnect requested");
      this._failInFlight();
    }
    this._open(this._everOpened ? State.RECONNECTING : State.CONNECTING);
  }

  _dropSocket(code, reason) {
    const ws = this.ws;
    this.ws = null;
    clearTimeout(this.timers.connect);
    clearTimeout(this.timers.heartbeat);
    clearTimeout(this.timers.heartbeatTimeout);
    this.heartbeatArmed = false;
    this.sendQueue = [];
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  _clearTimers() {
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    clearTimeout(this.sendTimer);
  }

  _setState(state) {
    if (state === this.state) return;
    const prev = this.state;
    this.state = state;
    for (const fn of this.stateHandlers) {
      try {
        fn(state, prev);
      } catch (e) {
        console.error(e);
      }
    }
  }

  // -- heartbeat -------------------------------------------------------------------------

  _startHeartbeat(ws) {
    clearTimeout(this.timers.heartbeat);
    this.heartbeatArmed = true; // a ping is due after heartbeatIntervalMs of silence
    this.timers.heartbeat = setTimeout(async () => {
      if (ws !== this.ws) return;
      this.heartbeatArmed = false; // until the reply: frames heard meanwhile do not re-arm
      try {
        await this._push(ws, "ping", {}, this.opts.heartbeatTimeoutMs);
      } catch (e) {
        // No reply in time: the socket is dead even if the browser has not noticed.
        if (ws === this.ws && e.code === "timeout") this._lost(ws, CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout");
        return;
      }
      if (ws === this.ws) this._startHeartbeat(ws);
    }, this.opts.heartbeatIntervalMs);
  }

  // -- requests --------------------------------------------------------------------------

  /**
   * Send a request; resolves with the reply's `data`, rejects with a RequestError.
   * While not OPEN the request waits (its timeout running) unless `{queue: false}`, which
   * rejects at once with code "offline" (right for typing indicators and other ephemera).
   */
  request(type, data = {}, { timeout = this.opts.requestTimeoutMs, queue = true } = {}) {
    if (this.state === State.OPEN && this.ws) return this._push(this.ws, type, data, timeout);
    if (!queue) return Promise.reject(new RequestError("offline", "Not connected."));
    return new Promise((resolve, reject) => {
      const w = { type, data, resolve, reject, deadline: now() + timeout };
      w.timer = setTimeout(() => {
        this.waiting = this.waiting.filter((x) => x !== w);
        reject(new RequestError("timeout", `No reply to ${type} in ${timeout} ms.`));
      }, timeout);
      this.waiting.push(w);
    });
  }

  /**
   * Accept a request or an invitation (`conversation.accept`): resolves with
   * `{conversation}`; the conversation's events then reach every socket of the user.
   */
  accept(conversationId) {
    return this.request("conversation.accept", { conversation_id: Number(conversationId) });
  }

  /** Decline a request or an invitation (`conversation.decline`). */
  decline(conversationId) {
    return this.request("conversation.decline", { conversation_id: Number(conversationId) });
  }

  /**
   * Send a fire-and-forget frame without a `ref` (only typing frames allow that): no reply,
   * no error. Dropped unless OPEN, since a stale notification is worse than none.
   */
  notify(type, data = {}) {
    if (this.state !== State.OPEN || !this.ws) return false;
    this._sendFrame(this.ws, JSON.stringify({ type, data }));
    return true;
  }

  _sendWaiting(w) {
    clearTimeout(w.timer);
    const left = Math.max(1000, w.deadline - now());
    this._push(this.ws, w.type, w.data, left).then(w.resolve, w.reject);
  }

  _push(ws, type, data, timeout) {
    return new Promise((resolve, reject) => {
      const ref = String(++this.refCounter);
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new RequestError("timeout", `No reply to ${type} in ${timeout} ms.`));
      }, timeout);
      this.pending.set(ref, { resolve, reject, timer, type, ws });
      this._sendFrame(ws, JSON.stringify({ type, ref, data }));
    });
  }

  _sendFrame(ws, text) {
    this.sendQueue.push([ws, text]);
    this._drainSendQueue();
  }

  _drainSendQueue() {
    clearTimeout(this.sendTimer);
    const b = this.bucket;
    while (this.sendQueue.length) {
      const t = now();
      b.tokens = Math.min(b.burst, b.tokens + ((t - b.stamp) / 1000) * b.rate);
      b.stamp = t;
      if (b.tokens < 1) {
        this.sendTimer = setTimeout(() => this._drainSendQueue(), Math.ceil(((1 - b.tokens) / b.rate) * 1000));
        return;
      }
      const [ws, text] = this.sendQueue.shift();
      if (ws !== this.ws) continue;
      b.tokens -= 1;
      try {
        ws.send(text);
      } catch {
        // The close event will follow and the pending request will be failed then.
      }
    }
  }

  _failInFlight() {
    // Replies to requests sent on a dead socket will never come.
    for (const [ref, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new RequestError("closed", "The connection was lost before the reply."));
      this.pending.delete(ref);
    }
  }

  _failAll(code, message) {
    this._failInFlight();
    for (const w of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new RequestError(code, message));
    }
    this.waiting = [];
  }

  // -- messages and the outbox -----------------------------------------------------------

  /**
   * Send a message through the outbox. Returns {clientId, done}: `done` resolves with the
   * stored Message once the server has it (possibly after reconnects and reloads of this
   * page's socket), or rejects with a RequestError the server gave (e.g. "forbidden").
   */
  send(conversationId, body, { clientId = newClientId() } = {}) {
    const item = {
      client_id: clientId,
      conversation_id: Number(conversationId),
      body,
      created_at: new Date().toISOString(),
    };
    this.outbox.add(item);
    const done = this._waitOutbox(clientId);
    this._emitOutbox();
    if (this.state === State.OPEN) this._sendOutboxItem(item);
    return { clientId, done };
  }

  /** The messages not yet confirmed by the server (oldest first). */
  pendingMessages(conversationId) {
    const all = this.outbox.list();
    return conversationId === undefined ? all : all.filter((i) => i.conversation_id === Number(conversationId));
  }

  /** Drop an unsent message from the outbox (e.g. the user gave up on it). */
  discard(clientId) {
    if (this.outbox.delete(clientId)) {
      this._rejectOutbox(clientId, new RequestError("discarded", "Discarded."));
      this._emitOutbox();
    }
  }

  _waitOutbox(clientId) {
    return new Promise((resolve, reject) => {
      if (!this.outboxWaiters.has(clientId)) this.outboxWaiters.set(clientId, []);
      this.outboxWaiters.get(clientId).push({ resolve, reject });
    });
  }

  _resolveOutbox(clientId, message) {
    for (const w of this.outboxWaiters.get(clientId) || []) w.resolve(message);
    this.outboxWaiters.delete(clientId);
  }

  _rejectOutbox(clientId, err) {
    for (const w of this.outboxWaiters.get(clientId) || []) w.reject(err);
    this.outboxWaiters.delete(clientId);
  }

  _flushOutbox() {
    clearTimeout(this.timers.outbox);
    for (const item of this.outbox.list()) this._sendOutboxItem(item);
  }

  _sendOutboxItem(item) {
    if (this.inFlight.has(item.client_id)) return;
    this.inFlight.add(item.client_id);
    this.request(
      "message.send",
      { conversation_id: item.conversation_id, body: item.body, client_id: item.client_id },
      { queue: false },
    ).then(
      (reply) => {
        this.inFlight.delete(item.client_id);
        // When it is the next seq here, the reply is this connection's delivery of my own
        // message: the server sends no message.new for it (docs/protocol.md, "message.send").
        const cur = this.cursors.get(reply.message.conversation_id);
        if (cur === undefined || reply.message.seq === cur + 1) this._dispatch("message.new", reply.message);
        this._confirm(item.client_id, reply.message);
      },
      (err) => {
        this.inFlight.delete(item.client_id);
        if (!this.outbox.items.has(item.client_id)) return; // confirmed by its echo meanwhile
        if (err.retryable) {
          // Kept: re-sent with the same client_id on the next sync, or after a pause.
          clearTimeout(this.timers.outbox);
          this.timers.outbox = setTimeout(() => {
            if (this.state === State.OPEN) this._flushOutbox();
          }, this.opts.outboxRetryMs);
          return;
        }
        this.outbox.delete(item.client_id);
        this._rejectOutbox(item.client_id, err);
        this._emitOutbox();
      },
    );
  }

  _settleOwn(message) {
    // Our own message.new echo confirms an outbox entry as surely as the reply does.
    if (message.sender_id === this.userId && this.outbox.items.has(message.client_id)) {
      this._confirm(message.client_id, message);
    }
  }

  _confirm(clientId, message) {
    if (!this.outbox.delete(clientId)) {
      this._resolveOutbox(clientId, message);
      return;
    }
    this._resolveOutbox(clientId, message);
    this._emitOutbox();
  }

  _emitOutbox() {
    const items = this.outbox.list();
    for (const fn of this.outboxHandlers) {
      try {
        fn(items);
      } catch (e) {
        console.error(e);
      }
    }
  }

  _emitGap(gap) {
    this._emit(this.gapHandlers, gap);
  }

  _emit(handlers, value) {
    for (const fn of handlers) {
      try {
        fn(value);
      } catch (e) {
        console.error(e);
      }
    }
  }
}

function now() {
  return globalThis.performance?.now ? performance.now() : Date.now();
}

function safeLocalStorage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // denied (e.g. sandboxed iframes)
  }
}
