//! The operator's console at `/admin` (SPEC §1.19) in a real browser: headless Chromium driven
//! over the DevTools protocol (tests/js/console.mjs) against a real relay. One relay and one
//! browser serve every test here (they take turns on the browser); each test signs in afresh.

use crate::harness::{Api, Relay, add_extension, admin, no_limits, required, runs};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const PHONE: (u32, u32) = (390, 844);

/// The console's files, as they are in the binary.
fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/admin")
        .join(name)
}

/// One headless Chromium with one tab, driven line by line.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Browser {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/console.mjs");
        let mut child = Command::new("node")
            .args([script, CHROMIUM])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            stdin,
            stdout,
        };
        assert_eq!(browser.answer(), "ready");
        browser
    }

    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the driver answered {line:?}: {e}"));
        assert_eq!(answer["ok"], true, "browser: {answer}");
        answer["value"].clone()
    }

    fn run(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    fn eval(&mut self, js: &str) -> Value {
        self.run(json!({"cmd": "eval", "js": js}))
    }

    /// Polls `js` in the page until it is truthy (10 s at most); its value.
    fn wait(&mut self, js: &str) -> Value {
        self.run(json!({"cmd": "wait", "js": js, "timeout_ms": 10_000}))
    }

    fn viewport(&mut self, (width, height): (u32, u32)) {
        self.run(json!({"cmd": "viewport", "width": width, "height": height}));
    }

    fn key(&mut self, key: &str) {
        self.run(json!({"cmd": "key", "key": key}));
    }

    fn type_text(&mut self, text: &str) {
        self.run(json!({"cmd": "type", "text": text}));
    }

    /// Every request since the last call: `{url, method, type, status, bytes}`.
    fn requests(&mut self) -> Vec<Value> {
        self.run(json!({"cmd": "requests"}))
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The relay and browser every test here shares; `None` where chromium or node is missing
/// (outside CI: the tests skip).
struct Shared {
    url: String,
    data_dir: PathBuf,
    /// An admin token, made with `reflecto admin token create --admin` on the relay's store.
    admin_token: String,
    browser: Mutex<Browser>,
}

fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let found = required(
                runs(CHROMIUM, &["--version"]) && runs("node", &["--version"]),
                "chromium and node",
                "apt-get install chromium nodejs",
            );
            found.then(start_shared)
        })
        .as_ref()
}

/// The relay runs on a runtime of its own thread, alive for the whole test process (the tests'
/// own runtimes end with each test). Its data dir is under the target dir, not /tmp.
fn start_shared() -> Shared {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let relay = Relay::start_in(
                dir,
                no_limits(),
                std::sync::Arc::new(reflecto::server::SystemClock),
                |_| {},
            )
            .await;
            tx.send((relay.url.clone(), relay.dir.path().to_path_buf()))
                .unwrap();
            std::future::pending::<()>().await;
        });
    });
    let (url, data_dir) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    admin(&data_dir, &["user", "add", "alice"]);
    let admin_token = admin(
        &data_dir,
        &["token", "create", "--admin", "--label", "console-test"],
    );
    assert!(admin_token.starts_with("rfa_live_"), "{admin_token}");
    Shared {
        url,
        data_dir,
        admin_token,
        browser: Mutex::new(Browser::start()),
    }
}

impl Shared {
    /// The browser, after a test that failed while holding it too.
    fn browser(&self) -> MutexGuard<'_, Browser> {
        self.browser.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn console(&self) -> String {
        format!("{}/admin/", self.url)
    }
}

/// Opens the console and signs in by keyboard: the token typed into the focused field, Enter.
/// Waits until the status view has loaded.
fn sign_in(s: &Shared, browser: &mut Browser) {
    browser.run(json!({"cmd": "navigate", "url": s.console()}));
    browser.eval("sessionStorage.clear(); location.hash = ''; true");
    browser.run(json!({"cmd": "navigate", "url": s.console()}));
    browser.wait("document.body.dataset.loaded === 'sign-in'");
    browser.eval("document.getElementById('admin-token').focus(); true");
    browser.type_text(&s.admin_token);
    browser.key("Enter");
    browser.wait("document.body.dataset.loaded === 'status'");
    assert_eq!(
        browser.eval("sessionStorage.getItem('reflecto.admin_token')"),
        json!(s.admin_token),
        "the token is kept in sessionStorage"
    );
}

/// Shows a view through its tab (by keyboard: focus the link, Enter) and waits for its data.
fn open_view(browser: &mut Browser, view: &str) {
    browser.eval(&format!(
        "document.body.dataset.loaded = ''; document.querySelector('nav a[href=\"#{view}\"]').focus(); true"
    ));
    browser.key("Enter");
    browser.wait(&format!("document.body.dataset.loaded === '{view}'"));
}

fn same_origin(url: &str, requests: &[Value]) {
    let origin = url.trim_end_matches('/');
    let foreign: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            let u = r["url"].as_str().unwrap();
            !(u.starts_with(&format!("{origin}/")) || u == origin)
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "requests left the relay's origin: {foreign:?}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn console_assets_load_nothing_from_another_origin() {
    for name in ["index.html", "admin.css", "admin.js"] {
        let body = std::fs::read_to_string(asset(name)).unwrap();
        for needle in [
            "http://",
            "https://",
            "//cdn",
            "@import",
            "url(",
            "eval(",
            "innerHTML",
        ] {
            assert!(!body.contains(needle), "{name} contains {needle}");
        }
        for attribute in ["src=\"", "href=\""] {
            for value in body.split(attribute).skip(1) {
                let value = value.split('"').next().unwrap();
                assert!(
                    !value.contains(':') && !value.starts_with('/'),
                    "{name}: {attribute}{value}\" is not a relative path"
                );
            }
        }
        // No inline script or style: `default-src 'self'` would block them.
        assert!(!body.contains(" style=\""), "{name} has an inline style");
        assert!(!body.contains(" onclick="), "{name} has an inline handler");
    }
    let html = std::fs::read_to_string(asset("index.html")).unwrap();
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"admin.js\"></script>"));
}

/// `/admin` redirects to `/admin/`, which is served with the CSP; the page loads only from
/// the relay; a wrong token shows the relay's own 401 and keeps nothing.
#[test]
fn console_is_served_under_its_policy_and_shows_the_relays_refusal() {
    let Some(s) = shared() else { return };
    let mut browser = s.browser();
    browser.viewport(PHONE);
    browser.requests();
    let doc = browser.run(json!({"cmd": "navigate", "url": format!("{}/admin", s.url)}));
    assert_eq!(doc["url"], s.console(), "{doc}");
    assert_eq!(doc["status"], 200);
    let headers = doc["headers"].as_object().unwrap();
    let csp = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-security-policy"))
        .map(|(_, v)| v.clone());
    assert_eq!(csp, Some(json!("default-src 'self'")), "{headers:?}");
    browser.eval("sessionStorage.clear(); true");
    browser.run(json!({"cmd": "navigate", "url": s.console()}));
    browser.wait("document.body.dataset.loaded === 'sign-in'");
    // A sender-shaped token that the relay does not know.
    browser.eval("document.getElementById('admin-token').focus(); true");
    browser.type_text("rfa_live_00000000000000000000000000000000");
    browser.key("Enter");
    let error = browser.wait(
        "!document.getElementById('error').hidden && document.getElementById('error').textContent",
    );
    assert!(
        error.as_str().unwrap().contains("invalid_token"),
        "not the relay's 401: {error}"
    );
    assert_eq!(
        browser.eval("sessionStorage.getItem('reflecto.admin_token')"),
        Value::Null
    );
    assert_eq!(browser.eval("document.getElementById('tabs').hidden"), true);
    let requests = browser.requests();
    same_origin(&s.url, &requests);
    assert!(
        requests
            .iter()
            .any(|r| r["url"].as_str().unwrap().ends_with("/admin/admin.js")),
        "{requests:?}"
    );
}
