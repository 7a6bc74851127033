// Drives headless Chromium over the DevTools protocol (through --remote-debugging-pipe: no
// packages, no WebSocket, any node version) to check the /app web app in a real browser: the
// page loads, its service worker registers, a push delivered with
// ServiceWorker.deliverPushMessage becomes a notification.
//
// Usage: node browser_push.mjs <chromium> <app url> <step> [<step>…], each step one of:
//   <push data>              delivered to the worker; done once its message is on screen (or,
//                            for a {"clear":"msg_…"} push, once no notification of it is left)
//   device:<json>            the page's saveDevice(json): the paired device and its credential
//   click:<msg id>:<action>  a notificationclick on that message's notification ('' = the body)
// Prints one JSON line: {"scope", "notifications": [{"title","body","tag","id"}] (after the last
// push), "steps": [the notifications after each step], "code"}; exits 1 on failure.
// pushManager.subscribe needs the browser vendor's push service, which a test cannot reach, so
// the page's own service-worker registration is exercised and the push is injected.

import { launch, removeProfile, sleep } from './devtools.mjs';

const [chromium, appUrl, ...pushes] = process.argv.slice(2);
const { browser, profile, send, listeners, log } = launch(chromium, 'reflecto-chromium-');

function fail(message) {
  console.error(message);
  console.error(log().split('\n').slice(-20).join('\n'));
  browser.kill('SIGKILL');
  removeProfile(profile);
  process.exit(1);
}

async function evaluate(sessionId, expression) {
  const result = await send('Runtime.evaluate',
    { expression, awaitPromise: true, returnByValue: true }, sessionId);
  if (result.exceptionDetails) throw new Error(JSON.stringify(result.exceptionDetails));
  return result.result.value;
}

try {
  const origin = new URL(appUrl).origin;
  await send('Browser.grantPermissions', { origin, permissions: ['notifications'] });
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Page.enable', {}, sessionId);
  await send('Runtime.enable', {}, sessionId);
  const registrations = [];
  listeners.push((m) => {
    if (m.method === 'ServiceWorker.workerRegistrationUpdated') registrations.push(...m.params.registrations);
  });
  await send('ServiceWorker.enable', {}, sessionId);
  await send('Page.navigate', { url: appUrl }, sessionId);
  // The page is up when its script has run (the form exists) in a secure context.
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    await sleep(100);
    ready = await evaluate(sessionId,
      "document.readyState === 'complete' && window.isSecureContext && !!document.querySelector('form')")
      .catch(() => false);
  }
  if (!ready) fail('the page did not load');
  // What the page's subscribe() does first: register its worker for its own scope.
  const scope = await evaluate(sessionId,
    "navigator.serviceWorker.register('sw.js', { scope: './' }).then(() => navigator.serviceWorker.ready).then((r) => r.scope)");
  let registration;
  for (let i = 0; i < 100 && !registration; i++) {
    registration = registrations.find((r) => r.scopeURL === scope && !r.isDeleted);
    if (!registration) await sleep(100);
  }
  if (!registration) fail('no service worker registration was reported for ' + scope);
  const onScreen = () => evaluate(sessionId,
    'navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, id: n.data && n.data.id })))');
  let notifications = [];
  const steps = [];
  let workerSession = null;
  for (const step of pushes) {
    if (step.startsWith('device:')) {
      await evaluate(sessionId, 'saveDevice(' + step.slice('device:'.length) + ').then(() => true)');
      steps.push(await onScreen());
      continue;
    }
    if (step.startsWith('click:')) {
      const [, id, action] = step.split(':');
      if (!workerSession) {
        const { targetInfos } = await send('Target.getTargets');
        const worker = targetInfos.find((t) => t.type === 'service_worker' && t.url.startsWith(scope));
        if (!worker) fail('no service worker target to click in');
        workerSession = (await send('Target.attachToTarget', { targetId: worker.targetId, flatten: true })).sessionId;
      }
      // What the browser does on a click: a notificationclick event in the worker.
      const clicked = await evaluate(workerSession, `self.registration.getNotifications().then((ns) => {
        const n = ns.find((x) => x.data && x.data.id === ${JSON.stringify(id)});
        if (n) self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n, action: ${JSON.stringify(action || '')} }));
        return !!n;
      })`);
      if (!clicked) fail('no notification of ' + id + ' to click');
      // The worker closes it at once; its acknowledgement is a fetch the browser must outlive.
      await sleep(2000);
      steps.push(await onScreen());
      continue;
    }
    const pushData = step;
    await send('ServiceWorker.deliverPushMessage',
      { origin, registrationId: registration.registrationId, data: pushData }, sessionId);
    // Shown when a notification carries this push's message (any notification, if unreadable);
    // a clear is done when no notification of its message is left.
    let parsed = null;
    try { parsed = JSON.parse(pushData); } catch (_) { parsed = null; }
    const cleared = parsed && typeof parsed.clear === 'string' ? parsed.clear : null;
    let expected = null;
    try { expected = parsed.envelope.payload.message; } catch (_) { expected = null; }
    const done = () => (cleared
      ? !notifications.some((n) => n.id === cleared)
      : notifications.some((n) => expected === null || n.body === expected));
    notifications = await onScreen();
    for (let i = 0; i < 100 && !done(); i++) {
      await sleep(100);
      notifications = await onScreen();
    }
    steps.push(notifications);
  }
  // A pairing link's `#code=` fills in the form.
  const code = await evaluate(sessionId, "document.getElementById('code').value");
  console.log(JSON.stringify({ scope, notifications, steps, code }));
} catch (e) {
  fail(String(e && e.stack || e));
}
browser.kill('SIGKILL');
await sleep(200);
removeProfile(profile);
process.exit(0);
