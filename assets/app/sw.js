// reflecto service worker: shows each Web Push message as a notification and opens its URL on
// a click. The push body is the relay's {"id":"msg_…","envelope":{…}} (SPEC §1.13), already
// decrypted by the browser.
'use strict';

// Pure: the notification for one push. `maxActions` is the browser's limit (0 where buttons are
// not supported). Kept free of browser objects so it can be checked outside a browser.
function notificationFor(push, maxActions) {
  const envelope = (push && push.envelope) || {};
  const payload = envelope.payload || {};
  const actions = Array.isArray(payload.actions) ? payload.actions : [];
  const shown = actions.slice(0, Math.max(0, maxActions | 0));
  const title = payload.title || envelope.source || 'reflecto';
  return {
    title,
    options: {
      body: payload.message || '',
      // The send's key (SPEC §1.15), else the message id: a newer message of the key, or a
      // repeated delivery, replaces the notification instead of adding one.
      tag: typeof payload.key === 'string' && payload.key ? payload.key : push.id,
      renotify: false,
      requireInteraction: payload.priority === 'urgent',
      silent: payload.priority === 'min',
      icon: 'icon-192.png',
      badge: 'icon-192.png',
      timestamp: Date.now(),
      actions: shown.map((action, i) => ({ action: 'a' + i, title: action.label })),
      data: { id: push.id, url: payload.url || null, actions: shown.map((a) => a.url) },
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
  return data.url ? safeUrl(data.url) : null;
}

if (typeof self !== 'undefined' && typeof self.addEventListener === 'function') {
  self.addEventListener('install', () => self.skipWaiting());
  self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

  self.addEventListener('push', (event) => {
    let push;
    try {
      push = event.data ? event.data.json() : null;
    } catch (_) {
      push = null;
    }
    if (!push || typeof push.id !== 'string') {
      // A push must always show something (userVisibleOnly), even one we cannot read.
      push = { id: 'reflecto-unreadable', envelope: { payload: { message: 'A message arrived that this page cannot read.' } } };
    }
    const max = (self.Notification && self.Notification.maxActions) || 0;
    const { title, options } = notificationFor(push, max);
    event.waitUntil(self.registration.showNotification(title, options));
  });

  self.addEventListener('notificationclick', (event) => {
    event.notification.close();
    const url = urlForClick(event.notification.data, event.action);
    event.waitUntil((async () => {
      if (url) return self.clients.openWindow(url);
      const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      if (open.length) return open[0].focus();
      return self.clients.openWindow(self.registration.scope);
    })());
  });
}

if (typeof module !== 'undefined') module.exports = { notificationFor, urlForClick };
