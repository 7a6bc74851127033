// The operator's console (SPEC §1.19): every action is a /v1/admin call with the admin token
// this tab keeps in sessionStorage, and every error shown is the API's own message. No
// third-party code; the relay serves it with `default-src 'self'`.
'use strict';

const TOKEN_KEY = 'reflecto.admin_token';
// Relative to /admin/, so a relay mounted under a path prefix works too.
const API = new URL('../v1/admin/', location.href);
const VIEWS = ['status', 'messages', 'devices', 'tokens', 'users', 'audit'];
const PAGE = 50;

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

/// An element with attributes (`on…` as listeners) and children (strings become text).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const when = (iso) => (iso ? el('time', { datetime: iso, title: iso }, new Date(iso).toLocaleString()) : 'never');

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/// The API's error, in either of its shapes: nested `{"error":{"code","message"}}`, or the
/// flat 401 `{"error":"invalid_token","message"?}`.
function apiError(response, body) {
  const error = body && body.error;
  if (error && typeof error === 'object') return new ApiError(error.message || error.code, error.code, response.status);
  if (typeof error === 'string') return new ApiError(body.message || error, error, response.status);
  return new ApiError(`the relay answered ${response.status} ${response.statusText}`, null, response.status);
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError('the relay did not answer (' + e.message + ')', null, 0);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) throw apiError(response, data);
  return data;
}

function showError(error) {
  const box = $('error');
  if (!error) { box.hidden = true; box.textContent = ''; return; }
  box.textContent = error.code ? `${error.message} (${error.code})` : error.message;
  box.hidden = false;
  // A token the relay no longer accepts (revoked, or not an admin token): sign in again.
  if (error.status === 401) signOut(true);
}

/// Runs an action; its failure is shown as the API worded it.
async function attempt(action) {
  try {
    showError(null);
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
};

/// A button that asks again before acting: the first press arms it, the second acts.
function confirmButton(label, action) {
  const button = el('button', { type: 'button', class: 'quiet' }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.className = 'danger';
      button.textContent = 'Confirm: ' + label.toLowerCase();
      return;
    }
    button.disabled = true;
    await attempt(action);
  });
  button.addEventListener('blur', () => {
    if (armed && !button.disabled) { armed = false; button.className = 'quiet'; button.textContent = label; }
  });
  return button;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Plain http off localhost has no clipboard API: select the text for Ctrl-C instead.
    const range = document.createRange();
    range.selectNodeContents(document.getElementById(button.dataset.copy));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = 'Selected: press Ctrl-C';
    return;
  }
  button.textContent = 'Copied';
}

// ---- status and the live feed -------------------------------------------------------------

function facts(list, entries) {
  list.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function flat(value) {
  if (value === null || typeof value !== 'object') return String(value);
  return Object.entries(value).map(([k, v]) => `${k}: ${flat(v)}`).join(', ');
}

async function loadStatus() {
  const s = await api('GET', 'status');
  const d = s.counts.deliveries_24h;
  const allowed = Object.entries(s.allowed_actions).filter(([, ok]) => ok).map(([a]) => a).join(', ') || 'none';
  facts($('status-facts'), [
    ['Version', s.version], ['Started', when(s.started_at)], ['Store', s.store],
    ['Queue', `${s.queue.queued} queued, ${s.queue.leased} leased, ${s.queue.pending} pending`],
    ['Users', s.counts.users], ['Devices', s.counts.devices], ['Tokens', s.counts.tokens],
    ['Last 24 h', `${s.counts.messages_24h} messages; ${d.delivered} delivered, ${d.failed} failed, ${d.expired} expired`],
    ['Allowed here', allowed],
  ]);
  const health = s.health || {};
  facts($('status-health'), Object.entries(health).map(([k, v]) => {
    const text = flat(v);
    const bad = /unavailable|fail|error|down|false/i.test(text);
    return [k, el('span', { class: 'badge ' + (bad ? 'error' : 'ok') }, text)];
  }));
}

let live = null;
function feed(event) {
  const list = $('live-feed');
  let item;
  if (event.type === 'send') {
    const n = Array.isArray(event.devices) ? event.devices.length : event.devices;
    item = el('li', {}, el('span', { class: 'id' }, event.id), `sent to ${event.user}, ${n} device(s)`);
  } else if (event.type === 'delivery') {
    item = el('li', {}, el('span', { class: 'id' }, event.id), `→ ${deviceName(event.device_id)}`,
      el('span', { class: 'badge ' + event.state }, event.state));
  } else {
    return;
  }
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
  if (current === 'messages') reloadSoon();
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { if (current === 'messages') attempt(() => loadMessages(false)); }, 300);
}

/// GET /v1/admin/events read with fetch (EventSource cannot send the token), reconnecting
/// with growing pauses while signed in.
async function follow() {
  const controller = new AbortController();
  live = controller;
  let pause = 1000;
  const badge = $('live-state');
  while (live === controller) {
    try {
      const response = await fetch(new URL('events', API), {
        headers: { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' },
        signal: controller.signal, cache: 'no-store',
      });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (_) { body = null; }
        throw apiError(response, body);
      }
      badge.textContent = 'live';
      badge.className = 'badge live';
      pause = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (data) { try { feed(JSON.parse(data)); } catch (_) { /* not an event of ours */ } }
        }
      }
    } catch (error) {
      if (live !== controller) return;
      if (error instanceof ApiError) {
        badge.textContent = error.message;
        if (error.status === 401 || error.status === 403) { showError(error); return; }
      }
    }
    if (live !== controller) return;
    badge.textContent = 'reconnecting';
    badge.className = 'badge error';
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 30000);
  }
}

// ---- messages -------------------------------------------------------------------------------

let devices = new Map();
const deviceName = (id) => (devices.has(id) ? `${devices.get(id).label} (${id})` : id);
const deviceLabel = (id) => (devices.has(id) ? devices.get(id).label : id);

async function loadDeviceNames() {
  const list = await api('GET', 'devices');
  devices = new Map((Array.isArray(list) ? list : list.items || []).map((d) => [d.id, d]));
  return devices;
}

let messagesBefore = null;
async function loadMessages(more) {
  const form = $('messages-filter');
  if (!more) messagesBefore = null;
  // Device names are re-read with each first page: devices come and go.
  if (!more || !devices.size) await loadDeviceNames();
  const page = await api('GET', 'messages' + query({
    user: form.user.value.trim(), state: form.state.value, limit: PAGE, before: messagesBefore,
  }));
  const items = page.items || [];
  const rows = items.map((m) => el('li', { 'data-id': m.id },
    el('span', { class: 'id' }, m.id), m.user, when(m.created_at),
    m.key ? el('span', { class: 'muted' }, 'key ' + m.key) : null,
    m.acknowledged_at ? el('span', { class: 'badge ok' }, 'acknowledged') : null,
    m.cleared_at ? el('span', { class: 'badge' }, 'cleared') : null,
    el('span', { class: 'deliveries' }, m.deliveries.length ? m.deliveries.map((d) =>
      el('span', { class: 'delivery', 'data-device': d.device_id, 'data-state': d.state, title: d.device_id },
        deviceLabel(d.device_id) + ' ', el('span', { class: 'badge ' + d.state }, d.state)))
      : el('span', { class: 'muted' }, 'no devices'))));
  const list = $('messages-list');
  if (more) list.append(...rows); else list.replaceChildren(...rows);
  if (!more && !items.length) list.append(el('li', { class: 'muted' }, 'No messages.'));
  messagesBefore = items.length ? items[items.length - 1].id : messagesBefore;
  $('messages-more').hidden = items.length < PAGE;
}

// ---- devices and pairing ----------------------------------------------------------------------

async function loadDevices() {
  await loadDeviceNames();
  const rows = [...devices.values()].map((d) => {
    const seen = !d.reachable ? 'unreachable' : d.last_seen_at ? null : 'never seen';
    return el('li', { 'data-id': d.id },
      el('strong', {}, d.label), d.type, d.user, el('span', { class: 'id' }, d.id),
      seen ? el('span', { class: 'badge' + (d.reachable ? '' : ' error') }, seen) : el('span', {}, 'seen ', when(d.last_seen_at)),
      confirmButton('Remove', async () => { await api('DELETE', 'devices/' + encodeURIComponent(d.id)); await loadDevices(); }));
  });
  $('devices-list').replaceChildren(...(rows.length ? rows : [el('li', { class: 'muted' }, 'No devices.')]));
}

function showPairing(p) {
  $('pairing-code').textContent = p.code;
  $('pairing-expires').replaceChildren(when(p.expires_at));
  const link = $('pairing-link');
  link.textContent = p.link;
  link.href = p.link;
  // The relay's own SVG, parsed as an image document: no script in it can run.
  const svg = new DOMParser().parseFromString(p.qr_svg, 'image/svg+xml').documentElement;
  const box = $('pairing-qr');
  if (svg && svg.nodeName === 'svg') {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'QR code of the pairing link');
    box.replaceChildren(document.importNode(svg, true));
  } else {
    box.replaceChildren();
  }
  $('pairing').hidden = false;
}

// ---- tokens -------------------------------------------------------------------------------

async function loadTokens() {
  const list = await api('GET', 'tokens');
  const rows = (Array.isArray(list) ? list : list.items || []).map((t) => el('li', { 'data-id': t.id },
    el('strong', {}, t.label), el('span', { class: 'id' }, t.id),
    t.admin ? el('span', { class: 'badge' }, 'admin') : `for ${t.user}`,
    t.test ? el('span', { class: 'badge' }, 'test') : null,
    t.priority_cap ? `cap ${t.priority_cap}` : null,
    t.scope_devices ? `scope ${t.scope_devices}` : null,
    el('span', {}, 'last used ', when(t.last_used_at)),
    t.revoked ? el('span', { class: 'badge revoked' }, 'revoked')
      : confirmButton('Revoke', async () => { await api('DELETE', 'tokens/' + encodeURIComponent(t.id)); await loadTokens(); })));
  $('tokens-list').replaceChildren(...(rows.length ? rows : [el('li', { class: 'muted' }, 'No tokens.')]));
}

function hideCreated() {
  $('created-token').textContent = '';
  $('created').hidden = true;
}

// ---- users and audit ------------------------------------------------------------------------

async function loadUsers() {
  const list = await api('GET', 'users');
  const rows = (Array.isArray(list) ? list : list.items || []).map((u) => el('li', { 'data-id': u.name },
    el('strong', {}, u.name), el('span', {}, 'since ', when(u.created_at)),
    confirmButton('Remove', async () => { await api('DELETE', 'users/' + encodeURIComponent(u.name)); await loadUsers(); })));
  $('users-list').replaceChildren(...(rows.length ? rows : [el('li', { class: 'muted' }, 'No users.')]));
}

let auditBefore = null;
async function loadAudit(more) {
  if (!more) auditBefore = null;
  const page = await api('GET', 'audit' + query({ limit: PAGE, before: auditBefore }));
  const items = page.items || [];
  const rows = items.map((a) => el('li', { 'data-id': a.id },
    when(a.at), el('strong', {}, a.action), el('span', { class: 'id' }, a.target || '—'),
    'by ' + a.actor, a.ip ? el('span', { class: 'muted' }, 'from ' + a.ip) : null));
  const list = $('audit-list');
  if (more) list.append(...rows); else list.replaceChildren(...rows);
  if (!more && !items.length) list.append(el('li', { class: 'muted' }, 'Nothing recorded yet.'));
  auditBefore = items.length ? items[items.length - 1].id : auditBefore;
  $('audit-more').hidden = items.length < PAGE;
}

// ---- navigation and sign-in -------------------------------------------------------------------

const LOADERS = {
  status: loadStatus, messages: () => loadMessages(false), devices: loadDevices,
  tokens: loadTokens, users: loadUsers, audit: () => loadAudit(false),
};
let current = null;

async function show(view) {
  if (!VIEWS.includes(view)) view = 'status';
  current = view;
  hideCreated();
  for (const name of VIEWS) $('view-' + name).hidden = name !== view;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.hash === '#' + view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  await attempt(LOADERS[view]);
  document.body.dataset.loaded = view;
}

function signedIn() {
  $('sign-in').hidden = true;
  $('tabs').hidden = false;
  $('sign-out').hidden = false;
  if (!live) follow();
  show(location.hash.slice(1));
}

function signOut(keepError) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (live) live.abort();
  live = null;
  devices = new Map();
  hideCreated();
  for (const name of VIEWS) $('view-' + name).hidden = true;
  $('tabs').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  if (!keepError) showError(null);
  document.body.dataset.loaded = 'sign-in';
}

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('admin-token');
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  // The token is checked by the relay, not guessed at here: its answer is what is shown.
  const ok = await attempt(async () => { await api('GET', 'status'); return true; });
  if (ok) { input.value = ''; signedIn(); } else { sessionStorage.removeItem(TOKEN_KEY); }
});
$('sign-out').addEventListener('click', () => signOut(false));
window.addEventListener('hashchange', () => { if (token()) show(location.hash.slice(1)); });

$('messages-filter').addEventListener('submit', (e) => { e.preventDefault(); attempt(() => loadMessages(false)); });
$('messages-more').addEventListener('click', () => attempt(() => loadMessages(true)));
$('audit-more').addEventListener('click', () => attempt(() => loadAudit(true)));

$('pair-form').addEventListener('submit', (e) => {
  e.preventDefault();
  attempt(async () => showPairing(await api('POST', 'pairings', { user: e.target.user.value.trim() })));
});

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.target;
  const request = f.kind.value === 'admin'
    ? { admin: true, label: f.label.value.trim() }
    : { user: f.user.value.trim(), label: f.label.value.trim() };
  if (f.kind.value !== 'admin') {
    if (f.priority_cap.value) request.priority_cap = f.priority_cap.value;
    if (f.scope_devices.value.trim()) request.scope_devices = f.scope_devices.value.trim();
    if (f.test.checked) request.test = true;
  }
  attempt(async () => {
    const created = await api('POST', 'tokens', request);
    $('created-token').textContent = created.token;
    $('created').dataset.id = created.id;
    $('created').hidden = false;
    const copyButton = document.querySelector('#created .copy');
    copyButton.textContent = 'Copy token';
    copyButton.focus();
    f.label.value = '';
    await loadTokens();
  });
});
$('created-done').addEventListener('click', hideCreated);

$('user-form').addEventListener('submit', (e) => {
  e.preventDefault();
  attempt(async () => { await api('POST', 'users', { name: e.target.username.value.trim() }); e.target.username.value = ''; await loadUsers(); });
});

for (const button of document.querySelectorAll('button.copy')) {
  button.addEventListener('click', () => copy($(button.dataset.copy).textContent, button));
}

if (token()) signedIn(); else signOut(false);
