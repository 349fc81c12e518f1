// What the page hands every chat module: its data (page-data), the one socket, display names,
// the bounds it was given and the DOM nodes it draws into. Constants only: what changes lives
// in state.js.

import { createSocket, Names, pageData } from "../common.js";

export const page = pageData();
export const me = page.user_id;
export const socket = createSocket(page);
export const names = new Names(page);

export const TYPING_RESEND_MS = (page.limits.typing_resend_seconds || 3) * 1000;
export const TYPING_EXPIRE_MS = (page.limits.typing_expire_seconds || 6) * 1000;
export const HISTORY_PAGE = page.limits.history_page || 50;
export const HISTORY_PAGE_MAX = page.limits.history_page_max || 200;

export const $ = (id) => document.getElementById(id);
export const ui = {
  root: $("chat"),
  list: $("conv-list"),
  requests: $("req-section"),
  requestList: $("req-list"),
  empty: $("conv-empty"),
  thread: $("thread"),
  placeholder: $("thread-placeholder"),
  title: $("thread-title"),
  sub: $("thread-sub"),
  presence: $("thread-presence"),
  messages: $("messages"),
  messageList: $("message-list"),
  older: $("load-older"),
  typing: $("typing"),
  composer: $("composer"),
  input: $("composer-input"),
};
