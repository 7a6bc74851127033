// An interactive headless Chromium for the /admin console tests (tests/it/console.rs), over the
// DevTools protocol through --remote-debugging-pipe (no packages, no WebSocket), like
// browser_push.mjs. One browser, one tab, kept for every test of the module.
//
// Usage: node console.mjs <chromium>; then one JSON command per stdin line, one JSON answer
// per stdout line ({"ok":true,"value":…} or {"ok":false,"error":"…"}):
//   {"cmd":"viewport","width":390,"height":844}   phone-sized (mobile emulation) window
//   {"cmd":"navigate","url":…}                    load a page; value: the document's status and headers
//   {"cmd":"eval","js":…}                         an expression (promises awaited); value: its result
//   {"cmd":"wait","js":…,"timeout_ms":10000}      poll until truthy; value: the truthy result
//   {"cmd":"key","key":"Tab"|"Enter"|…}           a key press, as a keyboard sends it
//   {"cmd":"type","text":…}                       text into the focused field
//   {"cmd":"screenshot","path":…}                 a PNG of the window
//   {"cmd":"requests"}                            every request since the last call: url, status,
//                                                 bytes on the wire (encodedDataLength)
//   {"cmd":"quit"}

import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { launch, removeProfile, sleep } from './devtools.mjs';

const [chromium] = process.argv.slice(2);
const { browser, profile, send, listeners, log } = launch(chromium, 'reflecto-console-', [
  '--disable-features=Translate,OptimizationHints,MediaRouter',
]);
browser.on('exit', () => removeProfile(profile));

const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
const page = (method, params) => send(method, params, sessionId);
await page('Page.enable');
await page('Runtime.enable');
await page('Network.enable');
// Every load is a first visit: the sizes measured are what a new browser transfers.
await page('Network.setCacheDisabled', { cacheDisabled: true });

// Requests by id: url, status, headers, bytes.
let requests = new Map();
let loaded = null;
listeners.push((m) => {
  if (m.sessionId !== sessionId) return;
  const p = m.params;
  if (m.method === 'Network.requestWillBeSent') {
    requests.set(p.requestId, { url: p.request.url, method: p.request.method, type: p.type, status: null, bytes: 0 });
  } else if (m.method === 'Network.responseReceived') {
    const r = requests.get(p.requestId);
    if (r) { r.status = p.response.status; r.headers = p.response.headers; }
  } else if (m.method === 'Network.loadingFinished') {
    const r = requests.get(p.requestId);
    if (r) r.bytes = p.encodedDataLength;
  } else if (m.method === 'Page.loadEventFired' && loaded) {
    loaded();
  }
});

async function evaluate(expression) {
  const result = await page('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, userGesture: true });
  if (result.exceptionDetails) {
    const d = result.exceptionDetails;
    throw new Error((d.exception && d.exception.description) || d.text);
  }
  return result.result.value;
}

const KEYS = { Tab: 9, Enter: 13, Escape: 27, ' ': 32 };
const commands = {
  async viewport({ width, height }) {
    await page('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: true });
    return true;
  },
  async navigate({ url }) {
    const done = new Promise((resolve) => { loaded = resolve; });
    const { errorText } = await page('Page.navigate', { url });
    if (errorText) throw new Error(errorText);
    await Promise.race([done, sleep(15000)]);
    loaded = null;
    const documents = [...requests.values()].filter((r) => r.type === 'Document');
    const doc = documents[documents.length - 1];
    return doc ? { url: doc.url, status: doc.status, headers: doc.headers } : null;
  },
  eval: ({ js }) => evaluate(js),
  async wait({ js, timeout_ms: timeout = 10000 }) {
    const until = Date.now() + timeout;
    let last;
    for (;;) {
      try { last = await evaluate(js); } catch (e) { last = 'threw: ' + e.message; }
      if (last && !(typeof last === 'string' && last.startsWith('threw: '))) return last;
      if (Date.now() > until) throw new Error(`timed out waiting for ${js}; last: ${JSON.stringify(last)}`);
      await sleep(100);
    }
  },
  async key({ key }) {
    const code = KEYS[key];
    const base = { key, code: key, windowsVirtualKeyCode: code, nativeVirtualKeyCode: code };
    await page('Input.dispatchKeyEvent', { type: 'rawKeyDown', ...base, ...(key === 'Enter' ? { text: '\r' } : {}) });
    if (key === 'Enter' || key === ' ') await page('Input.dispatchKeyEvent', { type: 'char', ...base, text: key === 'Enter' ? '\r' : ' ' });
    await page('Input.dispatchKeyEvent', { type: 'keyUp', ...base });
    return true;
  },
  async type({ text }) {
    await page('Input.insertText', { text });
    return true;
  },
  async screenshot({ path }) {
    const { data } = await page('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false });
    writeFileSync(path, Buffer.from(data, 'base64'));
    return true;
  },
  async requests() {
    const list = [...requests.values()].map(({ headers, ...r }) => r);
    requests = new Map();
    return list;
  },
  async quit() {
    browser.kill('SIGKILL');
    setTimeout(() => process.exit(0), 200);
    return true;
  },
};

// Reading and permissions granted once: the console's copy button writes the clipboard.
await send('Browser.grantPermissions', { permissions: ['clipboardReadWrite', 'clipboardSanitizedWrite'] }).catch(() => null);

console.log(JSON.stringify({ ok: true, value: 'ready' }));
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error('unknown command ' + command.cmd);
    answer = { ok: true, value: await run(command) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message || e), browser: log().split('\n').slice(-10).join('\n') };
  }
  console.log(JSON.stringify(answer));
}
browser.kill('SIGKILL');
