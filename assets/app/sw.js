// reflecto service worker: shows each Web Push message as a notification, closes it when the
// message is cleared, and on a click opens its URL and acknowledges it with the device's
// credential (SPEC §1.13, §1.15, §1.16). A push body is the relay's {"id":"msg_…","envelope":{…}}
// or {"clear":"msg_…"}, already decrypted by the browser. The page (app.js) loads this file
// too, for the device storage both share; the event handlers are only installed in a worker.
'use strict';

// Pure: the notification for one push. `maxActions` is the browser's limit (0 where buttons are
// not supported). Kept free of browser objects so it can be checked outside a browser.
function notificationFor(push, maxActions) {
  const envelope = (push && push.envelope) || {};
  const payload = envelope.payload || {};
  const actions = Array.isArray(payload.actions) ? payload.actions : [];
  const shown = actions.slice(0, Math.max(0, maxActions | 0));
  const title = payload.title || envelope.source || 'reflecto';
  // A response button (SPEC §1.16) is `r<i>`, a link `a<i>`; data keeps what each one does.
  const isResponse = (action) => typeof action.response === 'string' && action.response !== '';
  return {
    title,
    options: {
      body: payload.message || '',
      // The send's key (SPEC §1.15), else the message id: a newer message of the key, or a
      // repeated delivery, replaces the notification instead of adding one.
      tag: typeof payload.key === 'string' && payload.key ? payload.key : push.id,
      // A message that repeats until acknowledged (SPEC §1.17) alerts again on each repeat.
      renotify: typeof payload.retry === 'number',
      requireInteraction: payload.priority === 'urgent',
      silent: payload.priority === 'min',
      icon: 'icon-192.png',
      badge: 'icon-192.png',
      timestamp: Date.now(),
      actions: shown.map((action, i) => ({ action: (isResponse(action) ? 'r' : 'a') + i, title: action.label })),
      data: {
        id: push.id,
        url: payload.url || null,
        actions: shown.map((a) => (isResponse(a) ? null : a.url)),
        responses: shown.map((a) => (isResponse(a) ? a.response : null)),
      },
    },
  };
}

// Only http(s) targets are opened: a message must not be able to run javascript: on a click.
function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

function urlForClick(data, action) {
  if (!data) return null;
  if (action && action.startsWith('a')) {
    const url = (data.actions || [])[Number(action.slice(1))];
    if (url) return safeUrl(url);
  }
  if (action && action.startsWith('r')) return null;
  return data.url ? safeUrl(data.url) : null;
}

// Pure: what a click does (SPEC §1.16): the notification itself acknowledges without a
// response and opens its url; a response button acknowledges with its response; a link
// button only opens its link. {acknowledge, response, url}.
function clickOutcome(data, action) {
  const url = urlForClick(data, action);
  // Only a message the relay sent can be acknowledged (not the stand-in for an unreadable push).
  if (!data || typeof data.id !== 'string' || !data.id.startsWith('msg_')) return { acknowledge: false, response: null, url };
  if (action && action.startsWith('r')) {
    const response = (data.responses || [])[Number(action.slice(1))];
    return { acknowledge: typeof response === 'string', response: response || null, url: null };
  }
  if (action && action.startsWith('a')) return { acknowledge: false, response: null, url };
  return { acknowledge: true, response: null, url };
}

// The paired device ({id, label, credential}) lives in IndexedDB: the page writes it at
// pairing, the worker (which has no localStorage) reads the credential to acknowledge.
const DB_NAME = 'reflecto';
const DB_STORE = 'device';

function openDevices() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(DB_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function onDevices(mode, use) {
  const db = await openDevices();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(DB_STORE, mode);
      const request = use(tx.objectStore(DB_STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

function saveDevice(device) {
  return onDevices('readwrite', (store) => store.put(device, 'device'));
}

function loadDevice() {
  return onDevices('readonly', (store) => store.get('device'));
}

// POST /v1/messages/{id}/acknowledge as this device; tried three times (a phone waking up
// may not have its network yet). The API is one level above the app's scope.
async function acknowledge(scope, id, response) {
  const device = await loadDevice();
  if (!device || !device.credential) return false;
  const url = new URL('../v1/messages/' + encodeURIComponent(id) + '/acknowledge', scope);
  const body = JSON.stringify(response ? { response } : {});
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const answer = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + device.credential },
        body,
      });
      if (answer.ok) return true;
      if (answer.status < 500 && answer.status !== 429) return false;
    } catch (_) { /* offline: try again */ }
    await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
  }
  return false;
}

// A synthetic event (not from the browser) refuses waitUntil; the work runs either way.
function keepAlive(event, work) {
  try {
    event.waitUntil(work);
  } catch (_) { /* the work goes on without the extension */ }
}

const inWorker = typeof ServiceWorkerGlobalScope !== 'undefined' && self instanceof ServiceWorkerGlobalScope;

if (inWorker) {
  self.addEventListener('install', () => self.skipWaiting());
  self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

  self.addEventListener('push', (event) => {
    let push;
    try {
      push = event.data ? event.data.json() : null;
    } catch (_) {
      push = null;
    }
    if (push && typeof push.clear === 'string') {
      // SPEC §1.15: the message was cleared (or answered on another device).
      const id = push.clear;
      keepAlive(event, self.registration.getNotifications().then((shown) => {
        for (const n of shown) if (n.data && n.data.id === id) n.close();
      }));
      return;
    }
    if (!push || typeof push.id !== 'string') {
      // A push must always show something (userVisibleOnly), even one we cannot read.
      push = { id: 'reflecto-unreadable', envelope: { payload: { message: 'A message arrived that this page cannot read.' } } };
    }
    const max = (self.Notification && self.Notification.maxActions) || 0;
    const { title, options } = notificationFor(push, max);
    keepAlive(event, self.registration.showNotification(title, options));
  });

  self.addEventListener('notificationclick', (event) => {
    const data = event.notification.data;
    event.notification.close();
    const outcome = clickOutcome(data, event.action);
    keepAlive(event, (async () => {
      const acknowledged = outcome.acknowledge
        ? acknowledge(self.registration.scope, data.id, outcome.response).catch(() => false)
        : Promise.resolve(false);
      try {
        if (outcome.url) await self.clients.openWindow(outcome.url);
        else if (!outcome.response) {
          const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
          if (open.length) await open[0].focus();
          else await self.clients.openWindow(self.registration.scope);
        }
      } catch (_) { /* no window may be opened (no user gesture): the acknowledgement still goes */ }
      await acknowledged;
    })());
  });
}

if (typeof module !== 'undefined') module.exports = { notificationFor, urlForClick, clickOutcome };
