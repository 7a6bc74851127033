// reflecto pairing page: checks that this browser can receive Web Push, asks for notification
// permission, subscribes with the relay's VAPID key and pairs the subscription as a `webpush`
// device (SPEC §1.13), keeping the device's credential in IndexedDB for the service worker's
// acknowledgements (§1.16; `saveDevice` is in sw.js, which the page loads first). No
// third-party code: everything the page needs is in these two files.
'use strict';

// The page lives at <relay>/app/; the API is one level up, so a relay behind a path prefix works.
const API = new URL('../', document.baseURI);
const form = document.getElementById('pair');
const status = document.getElementById('status');
const submit = document.getElementById('submit');

function show(kind, text) {
  status.className = kind;
  status.textContent = text;
}

function isIos() {
  return /iPad|iPhone|iPod/.test(navigator.userAgent) ||
    (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
}

// What stops this browser from receiving pushes, as a sentence for the person holding it.
function blocker() {
  if (!window.isSecureContext) {
    return 'Notifications need a secure page: open this app over https (your relay behind a TLS ' +
      'proxy such as Caddy or nginx), or at http://localhost on the relay itself.';
  }
  if (isIos() && !navigator.standalone && !('PushManager' in window)) {
    return 'On iPhone and iPad, add this page to the home screen first (Share → Add to Home ' +
      'Screen), then open reflecto from the home screen and pair there.';
  }
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    return 'This browser cannot receive push notifications. Chrome, Edge, Firefox and Safari 16.4+ can.';
  }
  if (Notification.permission === 'denied') {
    return 'Notifications are blocked for this site. Allow them in the browser\'s site settings, ' +
      'then reload this page.';
  }
  return null;
}

function base64UrlToBytes(text) {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - text.length % 4) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function sameKey(a, b) {
  if (!a || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

async function errorText(response) {
  try {
    const body = await response.json();
    const error = body.error;
    if (error && typeof error === 'object' && error.message) return error.message;
    if (body.message) return body.message;
    if (typeof error === 'string') return error;
  } catch (_) { /* not JSON */ }
  return 'the relay answered ' + response.status;
}

async function subscribe() {
  const registration = await navigator.serviceWorker.register('sw.js', { scope: './' });
  await navigator.serviceWorker.ready;
  const response = await fetch(new URL('v1/webpush/vapid', API));
  if (!response.ok) throw new Error('could not fetch the relay\'s key: ' + await errorText(response));
  const key = base64UrlToBytes((await response.json()).public_key);
  let subscription = await registration.pushManager.getSubscription();
  // A subscription made for another relay key cannot be used with this one.
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  return subscription ||
    registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}

async function pair(event) {
  event.preventDefault();
  const code = form.code.value.trim();
  const label = form.label.value.trim();
  submit.disabled = true;
  try {
    show('info', 'Asking for permission…');
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      show('error', permission === 'denied'
        ? 'Notifications are blocked for this site. Allow them in the browser\'s site settings, then try again.'
        : 'Notifications were not allowed, so this device cannot be paired. Try again and choose Allow.');
      return;
    }
    show('info', 'Subscribing…');
    const subscription = await subscribe();
    show('info', 'Pairing…');
    const response = await fetch(new URL('v1/devices/pair', API), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code, type: 'webpush', label, subscription: subscription.toJSON() }),
    });
    if (!response.ok) {
      show('error', 'Pairing failed: ' + await errorText(response));
      return;
    }
    const device = await response.json();
    localStorage.setItem('reflecto.device', JSON.stringify({ id: device.device_id, label: device.label }));
    // The worker acknowledges clicks with it; a relay without acknowledgements sends none.
    await saveDevice({ id: device.device_id, label: device.label, credential: device.credential || null });
    form.reset();
    show('ok', 'Paired as "' + device.label + '". Notifications sent to this device will appear here.');
    showPaired();
  } catch (error) {
    show('error', 'Pairing failed: ' + (error && error.message ? error.message : error));
  } finally {
    submit.disabled = !!blocker();
  }
}

function showPaired() {
  const saved = JSON.parse(localStorage.getItem('reflecto.device') || 'null');
  document.getElementById('paired').textContent = saved
    ? 'This browser is paired as "' + saved.label + '" (' + saved.id + ').'
    : '';
}

const reason = blocker();
if (reason) {
  show('error', reason);
  submit.disabled = true;
}
if (!form.label.value) form.label.value = isIos() ? 'iphone' : /Android/.test(navigator.userAgent) ? 'phone' : 'browser';
// A pairing link (`reflecto setup`, `reflecto admin pair`) carries the code in the fragment,
// which the browser never sends to any server.
const linked = /^#code=([0-9]{6})$/.exec(location.hash);
if (linked && !form.code.value) form.code.value = linked[1];
form.addEventListener('submit', pair);
showPaired();
