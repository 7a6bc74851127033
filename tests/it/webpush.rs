//! Web Push through the real relay (SPEC §1.13): the VAPID key served and kept across restarts,
//! pairing a `webpush` device with a browser's subscription (keys checked, the SSRF guard
//! without `--webpush-allow-local`, a refused subscription spends no code), and the `web`
//! selector; delivery through the relay to the fake push service (tests/py/fake_push.py: py_vapid
//! checks VAPID, http_ece decrypts; code that is not ours), every outcome class, no text at
//! rest or in trace logs; and `/app` served from the binary.

use crate::harness::{
    Api, ManualClock, Relay, assert_refused, code_of, eventually, field_of_each, files_containing,
    no_limits, subscription,
};
use crate::webpush_core::{FakePush, python_available, webpush_worker};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reflecto::delivery::Worker;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn vapid_key(relay: &Relay) -> String {
    let response = relay.api().get_ok("/v1/webpush/vapid", None).await;
    let body: Value = response.json().await.unwrap();
    body["public_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn vapid_key_is_a_p256_point_and_survives_a_restart() {
    let mut relay = Relay::start(no_limits()).await;
    let key = vapid_key(&relay).await;
    let point = URL_SAFE_NO_PAD.decode(&key).unwrap();
    assert_eq!(point.len(), 65);
    p256::PublicKey::from_sec1_bytes(&point).expect("a valid P-256 point");
    relay.restart().await;
    assert_eq!(
        vapid_key(&relay).await,
        key,
        "subscriptions are bound to this key"
    );
}

#[tokio::test]
async fn local_endpoints_are_refused_without_allow_local_and_spend_no_code() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let code = relay.admin(&["pair", "--user", "alice"]);
    for endpoint in [
        "https://127.0.0.1/push/1",
        "https://10.0.0.1/push/1",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push/1",
        "https://localhost:8443/push/1",
        "http://push.example.com/push/1",
    ] {
        let (status, body) = relay
            .api()
            .pair_reply(&json!({"code": code, "type": "webpush", "label": "phone", "subscription": subscription(endpoint)}))
            .await;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(code_of(&body), "invalid_body", "{endpoint}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("/push/1"),
            "the capability path is not echoed: {message}"
        );
    }
    let mut bad_point = subscription("https://127.0.0.1/p");
    bad_point["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([4u8; 65]));
    let mut short_auth = subscription("https://127.0.0.1/p");
    short_auth["keys"]["auth"] = json!(URL_SAFE_NO_PAD.encode([1u8; 15]));
    for (what, body) in [
        ("no subscription", json!({"type": "webpush", "label": "p"})),
        (
            "bad point",
            json!({"type": "webpush", "label": "p", "subscription": bad_point}),
        ),
        (
            "short auth",
            json!({"type": "webpush", "label": "p", "subscription": short_auth}),
        ),
        (
            "subscription on an extension",
            json!({"type": "extension", "label": "p", "subscription": subscription("https://127.0.0.1/p")}),
        ),
        (
            "not an object",
            json!({"type": "webpush", "label": "p", "subscription": "https://127.0.0.1/p"}),
        ),
    ] {
        let mut body = body;
        body["code"] = json!(code);
        let (status, reply) = relay.api().pair_reply(&body).await;
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(code_of(&reply), "invalid_body", "{what}");
    }
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM devices WHERE type = 'webpush'"),
        0
    );
    // Every refusal above left the code unspent: an extension still pairs with it.
    relay
        .api()
        .pair(json!({"code": code, "type": "extension", "label": "desk"}))
        .await;
}

#[tokio::test]
async fn a_webpush_device_pairs_with_allow_local_and_the_web_selector_reaches_it() {
    let relay = Relay::start_with(no_limits(), ManualClock::now(), |c| {
        c.webpush_allow_local = true
    })
    .await;
    let (token, phone, _) = relay.alice();
    let code = relay.admin(&["pair", "--user", "alice"]);
    let (status, body) = relay
        .api()
        .pair_reply(&json!({"code": code, "type": "WebPush", "label": "browser", "subscription": subscription("http://127.0.0.1:9/push/x")}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "webpush");
    // SPEC §1.16: a browser gets a credential too, to acknowledge with.
    assert!(
        body["credential"]
            .as_str()
            .unwrap()
            .starts_with("rfd_live_"),
        "{body}"
    );
    let browser = body["device_id"].as_str().unwrap().to_owned();
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM devices WHERE type = 'webpush' AND endpoint = 'http://127.0.0.1:9/push/x'"),
        1
    );

    let reply: Value = relay
        .send_json(
            &token,
            json!({"message": "to the browser", "device": "web"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["delivered_to"],
        json!([{"device_id": browser, "type": "webpush"}]),
        "{reply}"
    );
    let reply: Value = relay
        .send_json(&token, json!({"message": "to all"}))
        .await
        .json()
        .await
        .unwrap();
    let types = field_of_each(&reply["delivered_to"], "type");
    assert!(
        types.contains(&"webpush") && types.contains(&"android"),
        "{reply}"
    );
    let status = relay
        .api()
        .status(&token, reply["id"].as_str().unwrap())
        .await;
    let web = status.delivery(&browser);
    assert_eq!(web["type"], "webpush");
    assert_eq!(web["state"], "queued");
    assert_ne!(phone, browser);
}

struct Setup {
    relay: Relay,
    clock: Arc<ManualClock>,
    fake: FakePush,
    worker: Worker,
    token: String,
    browser: String,
    /// The browser device's credential from pairing (SPEC §1.16: every type gets one).
    credential: String,
}

/// A relay with `--webpush-allow-local` (the fake is plain http on 127.0.0.1), alice with a
/// webpush device whose subscription the fake generated, answering per `script`.
async fn setup(script: &str) -> Setup {
    let clock = ManualClock::now();
    let relay =
        Relay::start_with(no_limits(), clock.clone(), |c| c.webpush_allow_local = true).await;
    let (token, _, _) = relay.alice();
    let fake = FakePush::start();
    let paired = fake.pair_browser(&relay, script).await;
    let browser = paired.device_id;
    let credential = paired
        .credential
        .expect("a webpush device gets a credential");
    let worker = webpush_worker(&relay, 5).await;
    Setup {
        relay,
        clock,
        fake,
        worker,
        token,
        browser,
        credential,
    }
}

impl Setup {
    async fn send(&self, body: Value) -> String {
        self.relay.api().send(&self.token, body).await
    }

    /// Sends `body`, and the worker pushes it (it alone): the message id.
    async fn pushed(&self, body: Value) -> String {
        let id = self.send(body).await;
        assert_eq!(self.worker.run_once().await.unwrap(), 1);
        id
    }

    /// The browser's delivery row of `GET /v1/messages/{id}`.
    async fn delivery(&self, id: &str) -> Value {
        let status = self.relay.api().status(&self.token, id).await;
        status.delivery(&self.browser).clone()
    }

    /// The plaintext of every push the fake received for "201", in order.
    async fn plaintexts(&self) -> Vec<String> {
        let received = self.fake.received("201").await;
        let texts = received.iter().map(|r| r["plaintext"].as_str().unwrap());
        texts.map(str::to_owned).collect()
    }

    async fn metrics(&self) -> String {
        self.relay.metrics().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_decrypts_exactly_id_and_envelope_and_no_text_is_at_rest() {
    if !python_available() {
        return;
    }
    const MARK: &str = "zq-webpush-secret-3f7a";
    let s = setup("201").await;
    let id = s
        .send(json!({"message": MARK, "title": "disk", "device": "web", "priority": "high", "ttl": 600}))
        .await;
    // Web Push only: the message row keeps no plaintext, the job only ciphertext.
    assert_eq!(
        s.relay.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE id = '{id}' AND envelope IS NULL"
        )),
        1
    );
    assert_eq!(
        s.relay.count(&format!(
            "SELECT COUNT(*) FROM jobs WHERE message_id = '{id}' AND payload_kind = 'webpush'"
        )),
        1
    );
    assert_eq!(s.worker.run_once().await.unwrap(), 1);
    let received = s.fake.received("201").await;
    assert_eq!(received.len(), 1, "{received:?}");
    let got = &received[0];
    assert_eq!(got["ok"], true, "{got}");
    let plaintext: Value = serde_json::from_str(got["plaintext"].as_str().unwrap()).unwrap();
    let keys: Vec<&String> = plaintext.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["envelope", "id"], "{plaintext}");
    assert_eq!(plaintext["id"], id.as_str());
    assert_eq!(plaintext["envelope"]["payload"]["message"], MARK);
    assert_eq!(plaintext["envelope"]["payload"]["title"], "disk");
    // The clock did not move: the whole ttl remains.
    assert_eq!(got["ttl"], 600, "{got}");
    assert_eq!(got["urgency"], "high");
    assert_eq!(got["sub"], "mailto:ops@example.org");
    let delivery = s.delivery(&id).await;
    assert_eq!(delivery["type"], "webpush");
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert!(
        s.metrics()
            .await
            .contains("reflecto_deliveries_total{channel=\"webpush\",outcome=\"delivered\"} 1")
    );
    let data = s.relay.dir.path();
    assert_eq!(files_containing(data, MARK), Vec::<String>::new());
    // The scan does read the store: the message id (not secret) is found in it.
    assert!(!files_containing(data, &id).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_subscription_makes_the_device_unreachable_and_drops_its_jobs() {
    if !python_available() {
        return;
    }
    for script in ["404", "410"] {
        let s = setup(script).await;
        let first = s.send(json!({"message": "one", "device": "web"})).await;
        let second = s.send(json!({"message": "two", "device": "web"})).await;
        assert_eq!(s.worker.run_once().await.unwrap(), 2);
        for id in [&first, &second] {
            let delivery = s.delivery(id).await;
            assert_eq!(delivery["state"], "failed", "{script}: {delivery}");
        }
        assert_eq!(
            s.relay.count(&format!(
                "SELECT reachable FROM devices WHERE id = '{}'",
                s.browser
            )),
            0,
            "{script}"
        );
        // An unreachable device is no longer a target.
        let (_, reply) = s
            .relay
            .api()
            .send_reply(&s.token, json!({"message": "three", "device": "web"}))
            .await;
        assert!(
            !reply["delivered_to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["device_id"] == s.browser.as_str()),
            "{reply}"
        );
        assert_eq!(s.worker.run_once().await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_or_unavailable_is_retried_after_the_clock_moves_with_the_same_bytes() {
    if !python_available() {
        return;
    }
    for script in ["429", "503"] {
        let s = setup(script).await;
        let id = s.send(json!({"message": "later", "device": "web"})).await;
        let payload = |s: &Setup| -> Vec<u8> {
            let conn = rusqlite::Connection::open(s.relay.dir.path().join("reflecto.db")).unwrap();
            conn.query_row(
                "SELECT payload FROM jobs WHERE message_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap()
        };
        let before = payload(&s);
        assert_eq!(s.worker.run_once().await.unwrap(), 1);
        let delivery = s.delivery(&id).await;
        assert_eq!(delivery["state"], "queued", "{script}: {delivery}");
        assert_eq!(delivery["last_error"], format!("HTTP_{script}"));
        assert_eq!(s.worker.run_once().await.unwrap(), 0, "not due yet");
        s.clock.advance(Duration::from_secs(3600));
        assert_eq!(
            s.worker.run_once().await.unwrap(),
            1,
            "due after the back-off"
        );
        assert_eq!(s.delivery(&id).await["attempts"], 2);
        assert_eq!(payload(&s), before, "a retry resends the stored ciphertext");
        let received = s.fake.received(script).await;
        assert_eq!(received.len(), 2);
        // The fake decrypted the same plaintext both times.
        assert_eq!(received[0]["plaintext"], received[1]["plaintext"]);
        assert!(
            s.metrics()
                .await
                .contains("reflecto_deliveries_total{channel=\"webpush\",outcome=\"retry\"} 2")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn other_client_errors_are_dead_lettered() {
    if !python_available() {
        return;
    }
    let s = setup("400").await;
    let id = s.pushed(json!({"message": "bad", "device": "web"})).await;
    let delivery = s.delivery(&id).await;
    assert_eq!(delivery["state"], "failed", "{delivery}");
    assert_eq!(delivery["last_error"], "HTTP_400");
    assert_eq!(
        s.relay.count(&format!(
            "SELECT reachable FROM devices WHERE id = '{}'",
            s.browser
        )),
        1,
        "a 400 is about the message, not the subscription"
    );
}

#[tokio::test]
async fn app_serves_the_page_the_worker_and_the_manifest_from_the_binary() {
    let relay = Relay::start(no_limits()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = http.get(format!("{}/app", relay.url)).send().await.unwrap();
    assert!(bare.status().is_redirection(), "{}", bare.status());
    assert_eq!(bare.headers()["location"], "app/");
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/app");
    for (path, file, content_type) in [
        ("/app/", "index.html", "text/html; charset=utf-8"),
        ("/app/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/app/sw.js", "sw.js", "text/javascript; charset=utf-8"),
        ("/app/app.css", "app.css", "text/css; charset=utf-8"),
        (
            "/app/manifest.webmanifest",
            "manifest.webmanifest",
            "application/manifest+json",
        ),
        ("/app/icon-192.png", "icon-192.png", "image/png"),
        ("/app/icon-512.png", "icon-512.png", "image/png"),
    ] {
        let response = http
            .get(format!("{}{path}", relay.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(
            response.headers()["content-security-policy"],
            "default-src 'self'",
            "{path}"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(body, std::fs::read(assets.join(file)).unwrap(), "{path}");
    }
    for missing in ["/app/make_icons.py", "/app/nope.js", "/app/..%2FCargo.toml"] {
        let response = http
            .get(format!("{}{missing}", relay.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
}

/// The real `reflecto serve` with its own worker: the Web Push channel is wired with the
/// default `--vapid-subject`, the message reaches the fake, and its text is in no store file
/// and no trace-level log line.
#[tokio::test(flavor = "multi_thread")]
async fn serve_delivers_to_a_webpush_device_and_neither_store_nor_trace_log_has_the_text() {
    use crate::harness::{BIN, admin, serve_via};
    use std::process::Command;

    if !python_available() {
        return;
    }
    const MARK: &str = "zq-webpush-trace-9c2d";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(&data, &["user", "add", "alice"]);
    let token = admin(
        &data,
        &["token", "create", "--user", "alice", "--label", "ci"],
    );
    let fake = FakePush::start();
    let mut relay = serve_via(
        Command::new(BIN)
            .args(["serve", "--webpush-allow-local"])
            .env_remove("REFLECTO_LOG_FORMAT")
            .env_remove("REFLECTO_VAPID_SUBJECT"),
        &data,
        &[("REFLECTO_LOG", "trace")],
    );
    let url = relay.url.clone();
    let api = Api::new(&url);
    let code = admin(&data, &["pair", "--user", "alice"]);
    api.pair(
        json!({"code": code, "type": "webpush", "label": "browser", "subscription": {
        "endpoint": format!("{}/push/201", fake.origin),
        "keys": {"p256dh": fake.p256dh, "auth": fake.auth}}}),
    )
    .await;
    let id = api
        .send(
            &token,
            json!({"message": format!("{MARK} body"), "title": format!("{MARK} title")}),
        )
        .await;
    let status = eventually("the push delivered", Duration::from_secs(30), || async {
        let status = api.status(&token, &id).await;
        if status["deliveries"][0]["state"] == "delivered" {
            Ok(status)
        } else {
            Err(format!("not delivered: {status}"))
        }
    })
    .await;
    assert_eq!(status["deliveries"][0]["type"], "webpush");
    let received = fake.received("201").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["ok"], true, "{}", received[0]);
    assert!(
        received[0]["plaintext"]
            .as_str()
            .unwrap()
            .contains(&format!("{MARK} body"))
    );
    let sub = received[0]["sub"].as_str().unwrap();
    assert!(
        sub.starts_with("mailto:admin@"),
        "the default subject: {sub}"
    );
    assert_eq!(files_containing(&data, MARK), Vec::<String>::new());
    assert!(!files_containing(&data, &id).is_empty());
    let _ = relay.child.kill();
    let (_, lines) = relay.finish();
    assert!(
        lines.iter().any(|l| l.contains("TRACE")),
        "trace logging was on"
    );
    let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(MARK)).collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

/// Whether Debian's chromium and node are here. Under `CI` their absence fails the test;
/// locally it is skipped with the reason.
fn browser_available() -> bool {
    use crate::harness::{required, runs};
    required(
        runs(CHROMIUM, &["--version"]) && runs("node", &["--version"]),
        "chromium and node",
        "apt-get install chromium nodejs",
    )
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// A [`setup`] answering "201", where python's push libraries, chromium and node are here.
async fn setup_for_chromium() -> Option<Setup> {
    if !python_available() || !browser_available() {
        return None;
    }
    Some(setup("201").await)
}

/// Headless Chromium opens `app`, its service worker gets `pushes` in order over the DevTools
/// protocol (tests/js/browser_push.mjs): what the page reported (scope, notifications, code).
async fn in_chromium(app: String, pushes: Vec<String>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/browser_push.mjs");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--experimental-websocket", script, CHROMIUM, &app])
            .args(&pushes)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A real browser: headless Chromium loads `/app/` from the relay, the page's service worker
/// registers, and the exact plaintext the relay encrypted for a push service (as the fake
/// decrypted it), delivered to the worker over the DevTools protocol, becomes a notification
/// with the title, the body and tag = message id.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_shows_the_relays_push_as_a_notification_tagged_with_the_message_id() {
    let Some(s) = setup_for_chromium().await else {
        return;
    };
    let id = s
        .pushed(json!({"message": "disk 91% full", "title": "db1", "device": "web"}))
        .await;
    let plaintext = s.plaintexts().await.remove(0);
    // Opened as a pairing link, whose code the page fills in.
    let app = format!("{}/app/#code=123456", s.relay.url);
    let result = in_chromium(app, vec![plaintext]).await;
    assert_eq!(result["scope"], format!("{}/app/", s.relay.url));
    assert_eq!(result["code"], "123456", "the link's code is in the form");
    assert_eq!(
        result["notifications"],
        json!([{"title": "db1", "body": "disk 91% full", "tag": id, "id": id}])
    );
}

/// SPEC §1.15, §1.16 in a real browser: the worker shows a keyed message with the key as its
/// tag and replaces it with the next message of the key, closes it on the relay's
/// `{"clear":…}` push, and a click on a response button posts the acknowledgement with that
/// response, with the credential the page keeps in IndexedDB; the relay records it.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_replaces_by_key_closes_on_clear_and_acknowledges_a_click() {
    let Some(s) = setup_for_chromium().await else {
        return;
    };
    // One at a time: the second of the key would supersede an undelivered first.
    let running = s
        .pushed(json!({"message": "build running", "title": "CI", "key": "ci:42", "device": "web"}))
        .await;
    let passed = s
        .pushed(json!({"message": "build passed", "title": "CI", "key": "ci:42", "device": "web"}))
        .await;
    let question = s.pushed(json!({"message": "Deploy v42?", "device": "web",
            "actions": [{"label": "Deploy", "response": "deploy"}, {"label": "Abort", "response": "abort"}]})).await;
    let path = format!("/v1/messages/{passed}");
    let (status, cleared) = s.relay.api().delete(&s.token, &path).await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(s.worker.run_once().await.unwrap(), 1, "the clear push");
    let pushes = s.plaintexts().await;
    assert_eq!(pushes.len(), 4, "{pushes:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&pushes[3]).unwrap(),
        json!({"clear": passed})
    );
    let device = json!({"id": s.browser, "label": "browser", "credential": s.credential});
    let steps = vec![
        format!("device:{device}"),
        pushes[0].clone(),
        pushes[1].clone(),
        pushes[2].clone(),
        pushes[3].clone(),
        format!("click:{question}:r0"),
    ];
    let result = in_chromium(format!("{}/app/", s.relay.url), steps).await;
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(
        steps[1],
        json!([{"title": "CI", "body": "build running", "tag": "ci:42", "id": running}])
    );
    assert_eq!(
        steps[2],
        json!([{"title": "CI", "body": "build passed", "tag": "ci:42", "id": passed}]),
        "replaced, one notification"
    );
    assert_eq!(steps[3].as_array().unwrap().len(), 2, "{}", steps[3]);
    let left: Vec<&Value> = steps[4].as_array().unwrap().iter().collect();
    assert_eq!(left.len(), 1, "the cleared one closed: {}", steps[4]);
    assert_eq!(left[0]["id"], question.as_str());
    assert_eq!(steps[5], json!([]), "the clicked one closed");
    let status = eventually(
        "the click acknowledged",
        Duration::from_secs(15),
        || async {
            let status = s.relay.api().status(&s.token, &question).await;
            if status["acknowledged"].is_null() {
                Err(format!("not yet: {status}"))
            } else {
                Ok(status)
            }
        },
    )
    .await;
    assert_eq!(status["acknowledged"]["response"], "deploy");
    assert_eq!(status["acknowledged"]["device_id"], s.browser.as_str());
}

#[test]
fn bad_vapid_subject_is_refused_before_the_relay_listens() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--vapid-subject", "ops"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = assert_refused(&out, 2, "--vapid-subject 'ops'");
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// SPEC §1.15: a send with a key carries RFC 8030's `Topic` (the first 32 characters of the
/// base64url SHA-256 of the key), which the fake push service checks; one without has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_reaches_the_push_service_as_its_topic() {
    let s = setup("201").await;
    s.send(json!({"message": "build passed", "key": "ci:42", "device": "web"}))
        .await;
    s.send(json!({"message": "no key", "device": "web"})).await;
    assert_eq!(s.worker.run_once().await.unwrap(), 2);
    let received = s.fake.received("201").await;
    assert_eq!(received.len(), 2, "{received:?}");
    let keyed = received
        .iter()
        .find(|r| r["plaintext"].as_str().unwrap().contains("build passed"))
        .unwrap();
    assert_eq!(keyed["ok"], true, "{keyed}");
    assert_eq!(
        keyed["topic"], "sy0T9JlonLu3Jyosynb6XRAEWcU-1vPx",
        "{keyed}"
    );
    let plaintext: Value = serde_json::from_str(keyed["plaintext"].as_str().unwrap()).unwrap();
    assert_eq!(plaintext["envelope"]["payload"]["key"], "ci:42");
    let plain = received
        .iter()
        .find(|r| r["plaintext"].as_str().unwrap().contains("no key"))
        .unwrap();
    assert_eq!(plain["ok"], true, "{plain}");
    assert!(plain.get("topic").is_none(), "{plain}");
}

/// SPEC §1.15 in a real browser: two pushes of one key, as the relay encrypted them, leave one
/// notification, tagged with the key and showing the newer message.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_replaces_the_notification_of_a_key() {
    let Some(s) = setup_for_chromium().await else {
        return;
    };
    let first = s
        .pushed(json!({"message": "build running", "key": "ci:42", "device": "web"}))
        .await;
    let second = s
        .pushed(json!({"message": "build passed", "key": "ci:42", "device": "web"}))
        .await;
    let pushes = s.plaintexts().await;
    assert_eq!(pushes.len(), 2);
    assert!(pushes[0].contains(&first), "in send order");
    let app = format!("{}/app/", s.relay.url);
    let result = in_chromium(app, pushes).await;
    assert_eq!(
        result["notifications"],
        json!([{"title": "ci", "body": "build passed", "tag": "ci:42", "id": second}])
    );
}
