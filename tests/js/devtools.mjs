// Headless Chromium driven over the DevTools protocol through --remote-debugging-pipe (no
// packages, no WebSocket, any node version): the one launcher and message pipe that
// browser_push.mjs and console.mjs share.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Removes a browser's profile dir once it exited. Chromium's helper processes may still be
// writing into it for a moment (rmdir then fails with ENOTEMPTY and, uncaught, took the
// helper down with it after the tests had passed): retried, and a dir left in the temp dir
// is not worth failing over.
export function removeProfile(profile) {
  try {
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    console.error(`leaving ${profile}: ${e.message}`);
  }
}

// Starts `chromium` headless on a fresh profile (a temp dir named after `profilePrefix`), with
// `flags` added. Returns the process, its profile dir, `send(method, params, sessionId)` (a
// promise of the command's result), `listeners` (called with every event) and `log()` (the
// end of what Chromium wrote to stderr).
export function launch(chromium, profilePrefix, flags = []) {
  const profile = mkdtempSync(join(tmpdir(), profilePrefix));
  const browser = spawn(chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ...flags,
    `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank',
    // fd 3: what Chromium reads (our commands); fd 4: what it writes. NUL-separated JSON.
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let log = '';
  browser.stderr.on('data', (chunk) => { log = (log + chunk).slice(-20000); });

  let nextId = 1;
  const pending = new Map();
  const listeners = [];
  let buffered = '';
  browser.stdio[4].setEncoding('utf8');
  browser.stdio[4].on('data', (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf('\0')) >= 0) {
      const message = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (message.id && pending.has(message.id)) {
        const { resolve, reject } = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) reject(new Error(JSON.stringify(message.error)));
        else resolve(message.result);
      } else if (message.method) {
        for (const listener of listeners) listener(message);
      }
    }
  });
  function send(method, params = {}, sessionId) {
    const id = nextId++;
    browser.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  }
  return { browser, profile, send, listeners, log: () => log };
}
