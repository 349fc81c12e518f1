// The profile page's "Notifications": email and push switches (PATCH
// /api/notifications/settings) and the browser's Web Push subscription: the permission is
// asked only when the button is clicked (a user gesture), then the service worker (/sw.js,
// scope "/") is registered and PushManager.subscribe's result is stored per device (POST
// /api/notifications/push/subscriptions). docs/subsystems/notifications.md.

import { api } from "./common.js";

// What the section shows (data-state on #notifications).
export const PushState = Object.freeze({
  UNSUPPORTED: "unsupported", // no service worker or no PushManager in this browser
  OFF: "off", // not subscribed; the button asks
  DENIED: "denied", // the user (or policy) refused the permission
  NO_PUSH_SERVICE: "no-push-service", // permission and worker fine, subscribe() refused
  ON: "on", // subscribed and stored on the server
});

const section = document.getElementById("notifications");
const status = document.getElementById("push-status");
const enable = document.getElementById("push-enable");
const disable = document.getElementById("push-disable");
const email = document.getElementById("notify-email");
const push = document.getElementById("notify-push");

const MESSAGES = {
  [PushState.UNSUPPORTED]: "This browser cannot show push notifications.",
  [PushState.OFF]: "Browser notifications are off on this device.",
  [PushState.DENIED]: "Notifications are blocked for this site; allow them in the browser's site settings.",
  [PushState.NO_PUSH_SERVICE]: "Notifications are allowed, but this browser has no push service to subscribe to.",
  [PushState.ON]: "Browser notifications are on for this device.",
};

function show(state, detail = "") {
  section.dataset.state = state;
  status.textContent = detail ? `${MESSAGES[state]} (${detail})` : MESSAGES[state];
  enable.hidden = state === PushState.ON || state === PushState.UNSUPPORTED;
  disable.hidden = state !== PushState.ON;
}

function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function registration() {
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  return navigator.serviceWorker.ready;
}

async function turnOn() {
  enable.disabled = true;
  try {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") return show(permission === "denied" ? PushState.DENIED : PushState.OFF);
    const reg = await registration();
    section.dataset.worker = reg.active ? "active" : "installing";
    const { public_key: key } = await api("GET", "/api/notifications/push/key");
    let subscription;
    try {
      subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    } catch (err) {
      return show(PushState.NO_PUSH_SERVICE, err.message);
    }
    await api("POST", "/api/notifications/push/subscriptions", subscription.toJSON());
    if (push && !push.checked) {
      push.checked = true;
      await api("PATCH", "/api/notifications/settings", { push: true });
    }
    show(PushState.ON);
  } catch (err) {
    show(PushState.OFF, err.message);
  } finally {
    enable.disabled = false;
  }
}

async function turnOff() {
  disable.disabled = true;
  try {
    const reg = await navigator.serviceWorker.getRegistration("/");
    const subscription = await reg?.pushManager.getSubscription();
    if (subscription) {
      await api("POST", "/api/notifications/push/unsubscribe", { endpoint: subscription.endpoint }).catch(() => null);
      await subscription.unsubscribe();
    }
    show(PushState.OFF);
  } finally {
    disable.disabled = false;
  }
}

async function init() {
  try {
    const prefs = await api("GET", "/api/notifications/settings");
    email.checked = prefs.email;
    push.checked = prefs.push;
  } catch (err) {
    status.textContent = `Could not load your notification settings: ${err.message}`;
  }
  for (const box of [email, push]) {
    box.addEventListener("change", async () => {
      try {
        await api("PATCH", "/api/notifications/settings", { [box.name]: box.checked });
      } catch (err) {
        box.checked = !box.checked;
        status.textContent = `Could not save: ${err.message}`;
      }
    });
  }
  if (!supported()) return show(PushState.UNSUPPORTED);
  enable.addEventListener("click", turnOn);
  disable.addEventListener("click", turnOff);
  if (Notification.permission === "denied") return show(PushState.DENIED);
  const reg = await navigator.serviceWorker.getRegistration("/");
  const subscription = await reg?.pushManager.getSubscription();
  show(subscription ? PushState.ON : PushState.OFF);
}

if (section) init();
