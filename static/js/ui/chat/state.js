// The chat page's one store: everything on the page that changes (the conversations, their
// read markers and unread versions, who is online, who is typing, the open thread, when we last
// said we type, whether the list has loaded, the people picked in the dialog). The only module
// of the page with mutable state; the others read and write through these functions.
//
// Writes are silent: the writer says which part of the page its change touches with
// changed(topic), and the module drawing that part has subscribe(topic, fn)'d to it. Calls
// are synchronous, so a change is drawn exactly where the writer announces it.

const conversations = new Map(); // id -> {id, kind, title, member_ids, unread, last_message, ...}
const requests = new Map(); // id -> a pending conversation (a request or invitation to me)
const unreadVersions = new Map(); // conversation id -> version of the last `unread` event applied
const presence = new Map(); // user id -> {online, last_seen}
const typers = new Map(); // conversation id -> Map(user id -> expiry timer)
const markers = new Map(); // conversation id -> Map(user id -> read seq)
const subscribers = new Map(); // topic -> [fn]
let thread = null; // the open thread: {id, messages: Map(seq -> Message), hasMore, loading}
let typingSentAt = 0; // when `typing.start` was last sent (0: not typing)
let listLoaded = false;
let picked = new Map(); // the new-conversation dialog: user id -> name

// -- changes -----------------------------------------------------------------------------------

/** Call fn whenever a writer announces a change to `topic` ("list", "head", "typing"). */
export function subscribe(topic, fn) {
  subscribers.set(topic, [...(subscribers.get(topic) || []), fn]);
}

/** Announce a change to `topic`: its subscribers run now, in the order they subscribed. */
export function changed(topic) {
  for (const fn of subscribers.get(topic) || []) fn();
}

// -- conversations -----------------------------------------------------------------------------

export function conversationGet(id) {
  return conversations.get(id);
}

export function conversationHas(id) {
  return conversations.has(id);
}

export function conversationsAll() {
  return [...conversations.values()];
}

/** Merge a REST snapshot into what is known; members also raise their read markers. */
export function conversationPut(raw) {
  const prev = conversations.get(raw.id) || {};
  const conv = { ...prev, ...raw };
  if (raw.members) conv.member_ids = raw.members.map((m) => m.user_id);
  conversations.set(conv.id, conv);
  if (raw.members) {
    const m = markers.get(conv.id) || new Map();
    for (const member of raw.members) m.set(member.user_id, Math.max(m.get(member.user_id) || 0, member.last_read_seq || 0));
    markers.set(conv.id, m);
  }
  return conv;
}

/** Forget every conversation whose id is not in `ids` (a Set). */
export function conversationsKeep(ids) {
  for (const id of [...conversations.keys()]) if (!ids.has(id)) conversations.delete(id);
}

export function conversationRemove(id) {
  conversations.delete(id);
}

/** A message was stored: it becomes the conversation's last one unless a newer one is known. */
export function conversationBump(msg) {
  const conv = conversations.get(msg.conversation_id);
  if (!conv) return;
  if (!conv.last_message || conv.last_message.seq <= msg.seq) {
    conv.last_message = msg;
    conv.last_message_at = msg.created_at;
  }
  conv.last_seq = Math.max(conv.last_seq || 0, msg.seq);
}

/** A message was edited or deleted: show the new version if it is the conversation's last. */
export function conversationMessageUpdate(msg) {
  const conv = conversations.get(msg.conversation_id);
  if (conv?.last_message?.id === msg.id) conv.last_message = msg;
}

/** Set the unread count of `conv` (the object read before, even if replaced meanwhile). */
export function conversationUnreadSet(conv, unread, asOf) {
  conv.unread = unread;
  // The count covers messages up to this seq; message.new after it is counted on top.
  if (typeof asOf === "number") conv.unreadAsOf = asOf;
}

/** Accept an `unread` push unless a newer version was applied; true when accepted. */
export function unreadVersionAccept(conversationId, version) {
  if ((unreadVersions.get(conversationId) ?? -Infinity) > version) return false;
  unreadVersions.set(conversationId, version);
  return true;
}

/** Versions restart with each connection. */
export function unreadVersionsClear() {
  unreadVersions.clear();
}

// -- requests and invitations (pending memberships: shown apart, with Accept / Decline) ---------

export function requestsAll() {
  return [...requests.values()];
}

export function requestPut(raw) {
  requests.set(raw.id, { ...(requests.get(raw.id) || {}), ...raw });
}

/** Forget every request whose id is not in `ids` (a Set). */
export function requestsKeep(ids) {
  for (const id of [...requests.keys()]) if (!ids.has(id)) requests.delete(id);
}

export function requestRemove(id) {
  requests.delete(id);
}

// -- read markers ------------------------------------------------------------------------------

/** The highest seq `userId` has read in the conversation (0 when unknown). */
export function markerOf(conversationId, userId) {
  return markers.get(conversationId)?.get(userId) || 0;
}

/** Raise a read marker; markers never move back. */
export function markerRaise(conversationId, userId, seq) {
  const m = markers.get(conversationId) || new Map();
  if ((m.get(userId) || 0) < seq) m.set(userId, seq);
  markers.set(conversationId, m);
}

// -- presence ----------------------------------------------------------------------------------

export function presenceHas(userId) {
  return presence.has(userId);
}

export function presenceGet(userId) {
  return presence.get(userId);
}

/** Store a `presence.query` answer as is. */
export function presenceSet(p) {
  presence.set(p.user_id, p);
}

/** A block hid this user's presence (`presence.hidden`): show it as unknown. */
export function presenceForget(userId) {
  presence.delete(userId);
}

/** Apply a `presence` push; true when applied. */
export function presencePush(p) {
  // Pushes of several processes may cross: the newest last_seen wins (docs/protocol.md).
  const known = presence.get(p.user_id);
  if (known?.last_seen && p.last_seen && p.last_seen < known.last_seen) return false;
  presence.set(p.user_id, p);
  return true;
}

// -- typing ------------------------------------------------------------------------------------

/** The ids of the people shown typing in a conversation. */
export function typistsIn(conversationId) {
  return [...(typers.get(conversationId)?.keys() || [])];
}

/** Every [conversation id, user id] shown typing. */
export function typistsAll() {
  const all = [];
  for (const [cid, map] of typers) for (const uid of map.keys()) all.push([cid, uid]);
  return all;
}

/** Show `userId` typing until `timer` (its expiry) fires, or (no timer) stop showing them. */
export function typistSet(conversationId, userId, timer = null) {
  const map = typers.get(conversationId) || new Map();
  clearTimeout(map.get(userId));
  if (timer !== null) map.set(userId, timer);
  else map.delete(userId);
  typers.set(conversationId, map);
}

export function typingSentAtGet() {
  return typingSentAt;
}

export function typingSentAtSet(t) {
  typingSentAt = t;
}

// -- the open thread ---------------------------------------------------------------------------

/** The open thread ({id, messages, hasMore, loading}) or null; read it, write through below. */
export function threadGet() {
  return thread;
}

export function threadOpen(id) {
  thread = { id, messages: new Map(), hasMore: false, loading: false };
}

export function threadClose() {
  thread = null;
}

/** Update the open thread's hasMore / loading (nothing when none is open). */
export function threadUpdate(fields) {
  if (thread) Object.assign(thread, fields);
}

/** Remember a stored message of the open thread by its seq. */
export function threadMessageSet(msg) {
  thread?.messages.set(msg.seq, msg);
}

// -- message search ----------------------------------------------------------------------------

let search = null; // {q, next, found: [result]} of the search shown, or null

/** The search shown in the sidebar ({q, next, found}) or null. */
export function searchGet() {
  return search;
}

/** Start showing the results of `q` (none yet), or stop showing any (null). */
export function searchStart(q) {
  search = q === null ? null : { q, next: null, found: [] };
}

/** Add a page of results of the search `q` (nothing if another search started since). */
export function searchAdd(q, page) {
  if (search?.q !== q) return false;
  search.found.push(...page.results);
  search.next = page.next;
  return true;
}

// -- the list as a whole -----------------------------------------------------------------------

export function listLoadedGet() {
  return listLoaded;
}

export function listLoadedSet() {
  listLoaded = true;
}

// -- the new-conversation dialog ---------------------------------------------------------------

/** The people picked, as [user id, name] in the order picked. */
export function pickedList() {
  return [...picked];
}

export function pickedHas(userId) {
  return picked.has(userId);
}

export function pickedAdd(userId, name) {
  picked.set(userId, name);
}

export function pickedRemove(userId) {
  picked.delete(userId);
}

/** Start over with `entries` ([user id, name] pairs; none by default). */
export function pickedReset(entries = []) {
  picked = new Map(entries);
}

// -- blocks ------------------------------------------------------------------------------------
// The people I blocked (GET /api/meet/blocks), for the conversation header's Block / Unblock.

const blocked = new Set();

export function blockedHas(userId) {
  return blocked.has(userId);
}

/** Start over with `ids`, or add (`on`) / remove one id. */
export function blockedReset(ids) {
  blocked.clear();
  for (const id of ids) blocked.add(id);
}

export function blockedSet(userId, on) {
  if (on) blocked.add(userId);
  else blocked.delete(userId);
}
