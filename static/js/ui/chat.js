// The conversations page: list (unread badges, presence dots), one open thread (history with
// scroll-back, typing, ✓ sent / ✓✓ read, edit, delete), a dialog to start a conversation.
// All user data goes in as text (common.el / textContent).
//
// This entry module only wires the modules of chat/ together and starts the page:
//   state.js     the one store (all that changes) and its change topics
//   page.js      page data, the socket, names, limits, DOM nodes (constants)
//   list.js      the conversation list, the requests (Accept / Decline), REST loading,
//                presence query
//   thread.js    the open thread: open/close, head, history paging, read markers
//   messages.js  the bubbles of the open thread: ✓ / ✓✓, edit, delete, pending sends
//   composer.js  writing and sending
//   typing.js    typing indicators, both ways
//   dialogs.js   the "New conversation" dialog
//   group.js     the open group's members, rename, add, remove, leave (#group-dialog)
//   events.js    what the server pushes
//   block.js     Block / Unblock in a direct conversation's header
//   search.js    message search in the sidebar; a result opens its message in the thread

import { State } from "../switchboard.js";
import { bindConnectionBadge, toast } from "./common.js";
import { bindBlock, renderBlock } from "./chat/block.js";
import { bindComposer } from "./chat/composer.js";
import { bindDialog } from "./chat/dialogs.js";
import { bindEvents } from "./chat/events.js";
import { bindGroup, renderGroup } from "./chat/group.js";
import { loadConversations, loadRequests, renderList, renderRequests } from "./chat/list.js";
import { page, socket, ui } from "./chat/page.js";
import { bindSearch, renderSearch } from "./chat/search.js";
import { conversationsAll, subscribe } from "./chat/state.js";
import { bindThread, openConversation, renderThreadHead, showThread } from "./chat/thread.js";
import { clearTyping, renderTyping } from "./chat/typing.js";
import { showUnreadTotal } from "./unread.js";

window.switchboard = socket; // handy in the console, and for the end-to-end tests

subscribe("list", () => renderList(openConversation));
// The tab's title and the "Chats" badge: the list's own counts (requests are not counted).
subscribe("list", () => showUnreadTotal(conversationsAll().reduce((n, c) => n + (c.unread || 0), 0)));
subscribe("requests", renderRequests);
subscribe("head", renderThreadHead);
subscribe("head", renderGroup);
subscribe("group", renderGroup);
subscribe("head", renderBlock);
subscribe("typing", renderTyping);
subscribe("search", renderSearch);

bindThread();
bindComposer();
bindEvents();
bindDialog();
bindGroup();
bindBlock();
bindSearch();

bindConnectionBadge(socket);
socket.onState((state) => {
  ui.root.dataset.connection = state;
  // Nobody is shown typing from a connection we no longer hear.
  if (state !== State.OPEN) clearTyping();
});

(async function start() {
  showThread(false);
  try {
    await loadConversations(); // sets the cursors `sync` resumes from
    await loadRequests();
  } catch (err) {
    toast(`Could not load conversations: ${err.message}`, "error");
  }
  socket.connect();
  const initial = page.conversation_id || location.pathname.match(/^\/c\/(\d+)$/)?.[1];
  if (initial) openConversation(Number(initial), false);
})();
