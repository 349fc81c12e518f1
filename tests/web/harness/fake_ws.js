// A scripted stand-in for the server, for testing static/js/switchboard.js in a real browser
// without a network: tests/web/test_client_library.py drives it through `window.fake`.
import * as lib from "/static/js/switchboard.js";

const fake = {
  sockets: [], // every FakeWebSocket created, in order
  frames: [], // every frame any socket sent, parsed
  noPong: false, // do not answer pings (a half-dead connection)
  dropOnSend: 0, // drop the connection instead of answering the next N message.send
  closeOnOpen: null, // close every new connection with this code (e.g. 4401)
  stored: new Map(), // client_id -> Message (what the "database" holds)
  seq: 0,
  userId: 7,
  reply(ws, frame, data) {
    ws.push({ type: "reply", ref: frame.ref, ok: true, data });
  },
  onOpen(ws) {
    if (fake.closeOnOpen) return ws.drop(fake.closeOnOpen);
    ws.push({ type: "hello", data: { user_id: fake.userId, limits: { rate_per_second: 20, rate_burst: 60 } } });
  },
  onFrame(ws, f) {
    if (f.type === "sync") return fake.reply(ws, f, { conversations: {} });
    if (f.type === "ping") return fake.noPong ? undefined : fake.reply(ws, f, { ts: Date.now() / 1000 });
    if (f.type === "message.send") {
      if (fake.dropOnSend > 0) {
        // Stored, but the reply is lost with the connection (the worst case for a client).
        fake.dropOnSend -= 1;
        fake.store(f.data);
        return setTimeout(() => ws.drop(1006), 0);
      }
      const duplicate = fake.stored.has(f.data.client_id);
      return fake.reply(ws, f, { message: fake.store(f.data), duplicate });
    }
    if (f.type === "fail") return ws.push({ type: "reply", ref: f.ref, ok: false, error: { code: "forbidden", message: "No." } });
    // anything else: never answered
  },
  store(d) {
    if (!fake.stored.has(d.client_id)) {
      fake.seq += 1;
      fake.stored.set(d.client_id, { id: fake.seq, seq: fake.seq, conversation_id: d.conversation_id, sender_id: fake.userId, body: d.body, client_id: d.client_id, deleted: false });
    }
    return fake.stored.get(d.client_id);
  },
  last() {
    return fake.sockets[fake.sockets.length - 1];
  },
  sent(type) {
    return fake.frames.filter((f) => f.type === type);
  },
};

class FakeWebSocket {
  constructor(url) {
    this.url = url;
    this.closedBy = null;
    this.dead = false;
    fake.sockets.push(this);
    setTimeout(() => fake.onOpen(this), 5);
  }
  send(text) {
    if (this.dead) return;
    const f = JSON.parse(text);
    fake.frames.push(f);
    setTimeout(() => !this.dead && fake.onFrame(this, f), 1);
  }
  close(code, reason) {
    this.dead = true;
    this.closedBy = { code, reason };
  }
  push(obj) {
    if (!this.dead) this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code) {
    if (this.dead) return;
    this.dead = true;
    this.onclose?.({ code, reason: "" });
  }
}

window.lib = lib;
window.fake = fake;
window.FakeWebSocket = FakeWebSocket;
window.sleep = (ms) => new Promise((r) => setTimeout(r, ms));
window.until = async (fn, ms = 5000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await window.sleep(10);
  }
  throw new Error("condition not met in time: " + fn);
};
window.harnessReady = true;
