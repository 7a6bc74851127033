//! The `/app` web app's files (SPEC §1.13, `assets/app/`): nothing third-party is loaded, the
//! manifest's icons exist at their stated sizes so the app installs, and the service worker's
//! notification logic (title, body, tag = message id, actions up to the browser's limit, only
//! http(s) URLs opened) is checked with node outside a browser.

use crate::harness::{assert_relative_links, json_stdout_of};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/app")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(asset(name)).unwrap()
}

const TEXT_FILES: [&str; 5] = [
    "index.html",
    "app.css",
    "app.js",
    "sw.js",
    "manifest.webmanifest",
];

/// Runs `script` in node with the shipped service worker `require`d as `sw`: the one JSON
/// value the script printed.
fn with_service_worker(script: &str) -> Value {
    let path = serde_json::to_string(asset("sw.js").to_str().unwrap()).unwrap();
    let script = format!("const sw = require({path});\n{script}");
    json_stdout_of(Command::new("node").args(["-e", &script]).output().unwrap())
}

#[test]
fn app_assets_load_nothing_from_another_origin() {
    for name in TEXT_FILES {
        let body = text(name);
        // The only absolute URL allowed is the advice to use http://localhost.
        let stripped = body.replace("http://localhost", "");
        for scheme in ["http://", "https://", "//cdn", "@import", "fonts.g"] {
            assert!(!stripped.contains(scheme), "{name} contains {scheme}");
        }
        assert_relative_links(name, &body);
    }
    // Every file the page and manifest reference is shipped.
    for referenced in ["app.js", "manifest.webmanifest", "icon-192.png", "sw.js"] {
        assert!(asset(referenced).is_file(), "{referenced} missing");
    }
}

/// (width, height) from a PNG's IHDR, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn manifest_makes_the_app_installable() {
    let manifest: Value = serde_json::from_str(&text("manifest.webmanifest")).unwrap();
    assert_eq!(manifest["display"], "standalone");
    assert!(manifest["name"].is_string() && manifest["start_url"].is_string());
    let icons = manifest["icons"].as_array().unwrap();
    let mut sizes = Vec::new();
    for icon in icons {
        let size: u32 = icon["sizes"]
            .as_str()
            .unwrap()
            .split('x')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let bytes = std::fs::read(asset(icon["src"].as_str().unwrap())).unwrap();
        assert_eq!(png_size(&bytes), (size, size), "{icon}");
        assert_eq!(icon["type"], "image/png");
        sizes.push(size);
    }
    assert!(
        sizes.contains(&192) && sizes.contains(&512),
        "installability needs 192 and 512 px icons"
    );
}

/// Whether node is here. Under `CI` its absence fails the test; locally it is skipped.
fn node_available() -> bool {
    crate::harness::required(
        crate::harness::runs("node", &["--version"]),
        "node",
        "apt-get install nodejs",
    )
}

#[test]
fn service_worker_shows_title_body_tag_and_limited_actions() {
    if !node_available() {
        return;
    }
    let push = json!({"id": "msg_0123456789abcdef", "envelope": {"type": "notification",
        "source": "ci", "payload": {"title": "backup", "message": "disk full", "priority": "urgent",
        "url": "https://example.org/run/1",
        "actions": [{"label": "Logs", "url": "https://example.org/logs"},
                    {"label": "Evil", "url": "javascript:alert(1)"},
                    {"label": "Third", "url": "https://example.org/3"}]}}});
    let untitled =
        json!({"id": "msg_2", "envelope": {"source": "cron", "payload": {"message": "hi"}}});
    let script = format!(
        r#"const push = {push};
const two = sw.notificationFor(push, 2);
const none = sw.notificationFor(push, 0);
const untitled = sw.notificationFor({untitled}, 2);
const keyed = sw.notificationFor({{id: 'msg_3', envelope: {{payload: {{message: 'm', key: 'ci:42'}}}}}}, 2);
const repeating = sw.notificationFor({{id: 'msg_4', envelope: {{payload: {{message: 'm', priority: 'urgent', retry: 30, expire: 600}}}}}}, 2);
console.log(JSON.stringify({{
  renotify: two.options.renotify, repeatingRenotify: repeating.options.renotify, repeatingTag: repeating.options.tag,
  title: two.title, body: two.options.body, tag: two.options.tag,
  requireInteraction: two.options.requireInteraction,
  actions: two.options.actions, noActions: none.options.actions.length,
  untitledTitle: untitled.title, untitledTag: untitled.options.tag,
  keyedTag: keyed.options.tag, keyedId: keyed.options.data.id,
  clickBody: sw.urlForClick(two.options.data, ''),
  clickLogs: sw.urlForClick(two.options.data, 'a0'),
  clickEvil: sw.urlForClick(two.options.data, 'a1'),
}}));"#,
    );
    let got = with_service_worker(&script);
    assert_eq!(got["title"], "backup");
    assert_eq!(got["body"], "disk full");
    assert_eq!(got["tag"], "msg_0123456789abcdef");
    assert_eq!(got["requireInteraction"], true);
    assert_eq!(
        got["actions"],
        json!([{"action": "a0", "title": "Logs"}, {"action": "a1", "title": "Evil"}])
    );
    assert_eq!(got["noActions"], 0);
    assert_eq!(got["untitledTitle"], "cron");
    assert_eq!(got["untitledTag"], "msg_2");
    // SPEC §1.15: the key is the tag, the id stays in the data.
    assert_eq!(got["keyedTag"], "ci:42");
    assert_eq!(got["keyedId"], "msg_3");
    // SPEC §1.17: a message that repeats alerts again each time under its tag (`renotify`);
    // anything else replaces silently.
    assert_eq!(got["renotify"], false);
    assert_eq!(got["repeatingRenotify"], true);
    assert_eq!(got["repeatingTag"], "msg_4");
    assert_eq!(got["clickBody"], "https://example.org/run/1");
    assert_eq!(got["clickLogs"], "https://example.org/logs");
    assert_eq!(got["clickEvil"], Value::Null);
}

/// SPEC §1.16: a response button acknowledges with its response and opens nothing, the
/// notification itself acknowledges without one and opens its url, a link button only opens.
#[test]
fn service_worker_clicks_answer_acknowledge_or_open() {
    if !node_available() {
        return;
    }
    let script = r#"const n = sw.notificationFor({id: 'msg_9', envelope: {payload: {message: 'Deploy?', url: 'https://ci.example/9',
  actions: [{label: 'Deploy', response: 'deploy'}, {label: 'Diff', url: 'https://ci.example/diff'}]}}}, 3);
console.log(JSON.stringify({
  actions: n.options.actions,
  button: sw.clickOutcome(n.options.data, 'r0'),
  body: sw.clickOutcome(n.options.data, ''),
  link: sw.clickOutcome(n.options.data, 'a1'),
  unreadable: sw.clickOutcome(sw.notificationFor({id: 'reflecto-unreadable', envelope: {payload: {message: 'x'}}}, 3).options.data, ''),
}));"#;
    let got = with_service_worker(script);
    assert_eq!(
        got["actions"],
        json!([{"action": "r0", "title": "Deploy"}, {"action": "a1", "title": "Diff"}])
    );
    assert_eq!(
        got["button"],
        json!({"acknowledge": true, "response": "deploy", "url": null})
    );
    assert_eq!(
        got["body"],
        json!({"acknowledge": true, "response": null, "url": "https://ci.example/9"})
    );
    assert_eq!(
        got["link"],
        json!({"acknowledge": false, "response": null, "url": "https://ci.example/diff"})
    );
    // The stand-in for a push the page could not read names no message: nothing to acknowledge.
    assert_eq!(got["unreadable"]["acknowledge"], false);
}
