//! The operator API (SPEC §1.19, §2.4) through the real `reflecto serve` process, on SQLite and
//! on a PostgreSQL cluster: every `/v1/admin` endpoint's success and refusal shapes; an admin
//! token cannot send and a sender token cannot administer; revocations and removals hold at
//! the next request; the audit log names CLI and API actions with their actors; and no secret
//! made during the test appears in the relay's whole log or in the audit log. Then `reflecto
//! admin --server` against the live relay prints what the local form prints.

use crate::harness::{Api, BIN, Serving, pg_database, serve_via, stdout_of};
use serde_json::{Value, json};
use std::process::{Command, Output};

/// A request and how it is refused: (method, path, JSON body if any, (status, error code)).
type Refusal<'a> = (&'a str, &'a str, Option<Value>, (u16, &'a str));

/// A relay process and how `reflecto admin` reaches its store directly.
struct Ops {
    serving: Serving,
    store: Vec<String>,
    http: reqwest::Client,
    /// The relay's API at `serving.url`.
    api: Api,
    _data: tempfile::TempDir,
}

impl Ops {
    fn start(database: Option<&str>) -> Ops {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command.arg("serve");
        let store = match database {
            Some(url) => {
                command.args(["--database", url]);
                vec!["--database".to_owned(), url.to_owned()]
            }
            None => vec![
                "--data-dir".to_owned(),
                data.path().to_str().unwrap().to_owned(),
            ],
        };
        // Debug: the most the relay ever logs, so the secrets check covers every line.
        let serving = serve_via(&mut command, data.path(), &[("REFLECTO_LOG", "debug")]);
        Ops {
            api: Api::new(&serving.url),
            serving,
            store,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    /// `reflecto admin` on the store with ARGS (any exit status).
    fn local(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("admin")
            .args(&self.store)
            .args(args)
            .env_remove("REFLECTO_ADMIN_TOKEN")
            .output()
            .unwrap()
    }

    /// `reflecto admin --server URL` with the admin token in the environment.
    fn remote(&self, token: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["admin", "--server", &self.serving.url])
            .args(args)
            .env("REFLECTO_ADMIN_TOKEN", token)
            .env("REFLECTO_CONFIG_DIR", self._data.path().join("cfg"))
            // A local store named in the environment is not read with --server (and must not
            // make clap refuse the flag).
            .env("REFLECTO_DATA_DIR", self._data.path().join("elsewhere"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.local(args);
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.api.call("GET", path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.api.call("POST", path, Some(token), Some(body)).await
    }

    /// `POST path` of `body`, which must answer 200: the answer's body.
    async fn accepted(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, token, body).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }

    /// `DELETE path`, which must answer 204.
    async fn delete(&self, path: &str, token: &str) {
        let (status, body) = self.api.call("DELETE", path, Some(token), None).await;
        assert_eq!(status, 204, "DELETE {path}: {body}");
    }

    /// Each (method, path, body) is refused with its (status, nested error code).
    async fn refuses(&self, token: &str, refusals: &[Refusal<'_>]) {
        for (method, path, body, want) in refusals {
            let (s, b) = self.api.call(method, path, Some(token), body.clone()).await;
            assert_eq!((s, code(&b)), *want, "{method} {path}: {b}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a nested error: {body}"))
}

/// The whole story on one relay; `store` is what `/v1/admin/status` must say it runs on.
async fn operator_story(ops: &Ops, store: &str) {
    let mut secrets: Vec<String> = Vec::new();
    ops.ok(&["user", "add", "alice"]);
    let alice_token = ops.ok(&["token", "create", "--user", "alice", "--label", "ci"]);
    let admin = ops.ok(&["token", "create", "--admin", "--label", "ops"]);
    assert!(
        admin.starts_with("rfa_live_") && admin.len() == 41,
        "{admin}"
    );
    secrets.extend([alice_token.clone(), admin.clone()]);

    // Who may ask: no token, an unknown one, a sender token, a malformed one.
    let (s, b) = ops.api.call("GET", "/v1/admin/status", None, None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("missing_token")),
        "{b}"
    );
    let unknown = format!("rfa_live_{}", "x".repeat(32));
    let (s, b) = ops.get("/v1/admin/status", &unknown).await;
    assert_eq!((s, b), (401, json!({"error": "invalid_token"})));
    // A sender token cannot administer…
    ops.refuses(
        &alice_token,
        &[("GET", "/v1/admin/users", None, (403, "forbidden"))],
    )
    .await;
    // … and the reverse: an admin token cannot send, nor act as a sender.
    ops.refuses(
        &admin,
        &[
            (
                "POST",
                "/v1/send",
                Some(json!({"message": "hi"})),
                (403, "forbidden"),
            ),
            ("GET", "/v1/token", None, (403, "forbidden")),
        ],
    )
    .await;

    // Status.
    let (s, status) = ops.get("/v1/admin/status", &admin).await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["store"], store);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["health"]["status"], "ready");
    assert_eq!(status["counts"]["users"], 1);
    assert_eq!(
        status["counts"]["tokens"], 2,
        "one sender and one admin token"
    );
    assert_eq!(status["allowed_actions"]["backup"], store == "sqlite");
    for key in ["queued", "leased", "pending"] {
        assert!(status["queue"][key].is_i64(), "{status}");
    }
    for key in ["delivered", "failed", "expired"] {
        assert!(status["counts"]["deliveries_24h"][key].is_i64(), "{status}");
    }

    // Users.
    let bob = ops
        .accepted("/v1/admin/users", &admin, json!({"name": "bob"}))
        .await;
    assert_eq!(bob["name"], "bob", "{bob}");
    let (s, b) = ops
        .post("/v1/admin/users", &admin, json!({"name": "bob"}))
        .await;
    assert_eq!((s, code(&b)), (409, "conflict"));
    assert_eq!(
        b["error"]["message"], "user 'bob' already exists",
        "the CLI's words"
    );
    ops.refuses(
        &admin,
        &[
            (
                "POST",
                "/v1/admin/users",
                Some(json!({"name": "  "})),
                (400, "usage_error"),
            ),
            (
                "POST",
                "/v1/admin/users",
                Some(json!({"nom": "x"})),
                (400, "invalid_body"),
            ),
        ],
    )
    .await;
    let (s, users) = ops.get("/v1/admin/users", &admin).await;
    assert_eq!(s, 200);
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("alice"), json!("bob")]);

    // Tokens: a sender token made through the API sends.
    let created = ops
        .accepted(
            "/v1/admin/tokens",
            &admin,
            json!({"user": "bob", "label": "deploy"}),
        )
        .await;
    let bob_token = created["token"].as_str().unwrap().to_owned();
    let bob_token_id = created["id"].as_str().unwrap().to_owned();
    assert!(bob_token.starts_with("rfk_live_"));
    assert_eq!(
        (created["user"].as_str(), created["admin"].as_bool()),
        (Some("bob"), Some(false))
    );
    secrets.push(bob_token.clone());
    let (nobody, admin_for_bob) = (
        json!({"user": "nobody", "label": "x"}),
        json!({"admin": true, "user": "bob", "label": "x"}),
    );
    ops.refuses(
        &admin,
        &[
            ("POST", "/v1/admin/tokens", Some(nobody), (404, "not_found")),
            (
                "POST",
                "/v1/admin/tokens",
                Some(admin_for_bob),
                (400, "usage_error"),
            ),
        ],
    )
    .await;
    let second = ops
        .accepted(
            "/v1/admin/tokens",
            &admin,
            json!({"admin": true, "label": "second"}),
        )
        .await;
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert!(second_token.starts_with("rfa_live_"));
    assert_eq!(second["user"], Value::Null);
    secrets.push(second_token.clone());
    let (s, tokens) = ops.get("/v1/admin/tokens", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(tokens.as_array().unwrap().len(), 4, "{tokens}");
    assert!(
        !tokens.to_string().contains("rfk_live_"),
        "never a secret in a listing"
    );
    let (_, only_bob) = ops.get("/v1/admin/tokens?user=bob", &admin).await;
    assert_eq!(only_bob.as_array().unwrap().len(), 1);
    ops.refuses(
        &admin,
        &[
            (
                "GET",
                "/v1/admin/tokens?user=nobody",
                None,
                (404, "not_found"),
            ),
            (
                "GET",
                "/v1/admin/tokens?color=red",
                None,
                (400, "usage_error"),
            ),
        ],
    )
    .await;

    // Pairing: the code, its link and QR code; a device pairs with it.
    let pairing = ops
        .accepted("/v1/admin/pairings", &admin, json!({"user": "bob"}))
        .await;
    let pair_code = pairing["code"].as_str().unwrap().to_owned();
    assert_eq!(
        pairing["link"],
        format!("{}/app/#code={pair_code}", ops.serving.url)
    );
    assert!(
        pairing["qr_svg"].as_str().unwrap().contains("<svg"),
        "{pairing}"
    );
    assert!(pairing["expires_at"].as_str().unwrap().ends_with('Z'));
    secrets.push(pair_code.clone());
    let nobody = Some(json!({"user": "nobody"}));
    ops.refuses(
        &admin,
        &[("POST", "/v1/admin/pairings", nobody, (404, "not_found"))],
    )
    .await;
    let paired = ops
        .api
        .pair(json!({"code": pair_code, "type": "extension", "label": "desk"}))
        .await;
    let device = paired.device_id;
    let credential = paired.credential.unwrap();
    secrets.push(credential.clone());

    // Devices.
    let (s, devices) = ops.get("/v1/admin/devices?user=bob", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(devices[0]["id"], device.as_str());
    assert_eq!(devices[0]["type"], "extension");
    ops.refuses(
        &admin,
        &[(
            "GET",
            "/v1/admin/devices?user=nobody",
            None,
            (404, "not_found"),
        )],
    )
    .await;

    // Messages: the API-made token sends; the operator sees where it went, never its text.
    // The live feed: a sender token is refused; an admin token hears the send.
    ops.refuses(
        &alice_token,
        &[("GET", "/v1/admin/events", None, (403, "forbidden"))],
    )
    .await;
    let mut feed = ops
        .http
        .get(format!("{}/v1/admin/events", ops.serving.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let text_sent = "the-secret-message-text-42";
    // An admin-created token sends.
    let message_id = ops
        .api
        .send(&bob_token, json!({"message": text_sent, "title": "t"}))
        .await;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = seen
                .lines()
                .find(|l| l.starts_with("data:") && l.contains(&message_id))
            {
                return serde_json::from_str::<Value>(line.trim_start_matches("data:").trim())
                    .unwrap();
            }
        }
        panic!("the feed ended: {seen}");
    })
    .await
    .expect("the send on the live feed within 10 s");
    assert_eq!(
        heard,
        json!({"type": "send", "id": message_id, "user": "bob", "devices": [device]})
    );
    drop(feed);
    let (s, page) = ops.get("/v1/admin/messages", &admin).await;
    assert_eq!(s, 200, "{page}");
    let first = &page["items"][0];
    assert_eq!(first["id"], message_id.as_str());
    assert_eq!(first["user"], "bob");
    assert_eq!(first["token_id"], bob_token_id.as_str());
    assert_eq!(first["deliveries"][0]["device_id"], device.as_str());
    assert_eq!(first["deliveries"][0]["state"], "pending");
    assert!(
        !page.to_string().contains(text_sent),
        "never the message text: {page}"
    );
    let (_, pending) = ops
        .get("/v1/admin/messages?state=pending&user=bob", &admin)
        .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let (_, delivered) = ops.get("/v1/admin/messages?state=delivered", &admin).await;
    assert_eq!(delivered["items"], json!([]));
    let (_, after) = ops
        .get(&format!("/v1/admin/messages?before={message_id}"), &admin)
        .await;
    assert_eq!(after["items"], json!([]), "nothing older");
    for bad in ["limit=0", "limit=101", "state=lost", "limit=x"] {
        let path = format!("/v1/admin/messages?{bad}");
        ops.refuses(&admin, &[("GET", &path, None, (400, "usage_error"))])
            .await;
    }

    // A removed device's credential is refused at once; a second removal is 404.
    let device_path = format!("/v1/admin/devices/{device}");
    ops.delete(&device_path, &admin).await;
    let (s, b) = ops.get("/v1/sync", &credential).await;
    assert_eq!((s, b), (401, json!({"error": "invalid_token"})));
    ops.refuses(
        &admin,
        &[("DELETE", &device_path, None, (404, "not_found"))],
    )
    .await;

    // Revocations hold at the next request: a sender token, then an admin token.
    ops.delete(&format!("/v1/admin/tokens/{bob_token_id}"), &admin)
        .await;
    let (s, _) = ops
        .post("/v1/send", &bob_token, json!({"message": "x"}))
        .await;
    assert_eq!(s, 401);
    assert_eq!(ops.get("/v1/admin/status", &second_token).await.0, 200);
    let second_id = second["id"].as_str().unwrap();
    ops.delete(&format!("/v1/admin/tokens/{second_id}"), &admin)
        .await;
    let (s, b) = ops.get("/v1/admin/status", &second_token).await;
    assert_eq!(
        (s, b),
        (401, json!({"error": "invalid_token"})),
        "a revoked admin token"
    );
    // The token making the request cannot revoke itself (it would lock its operator out).
    let admin_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "ops");
    let admin_id = admin_id.unwrap()["id"].as_str().unwrap().to_owned();
    let own = format!("/v1/admin/tokens/{admin_id}");
    ops.refuses(
        &admin,
        &[
            (
                "DELETE",
                "/v1/admin/tokens/tok_nope",
                None,
                (404, "not_found"),
            ),
            ("DELETE", &own, None, (409, "conflict")),
        ],
    )
    .await;

    // Users go, with a 404 the second time.
    ops.delete("/v1/admin/users/bob", &admin).await;
    ops.refuses(
        &admin,
        &[("DELETE", "/v1/admin/users/bob", None, (404, "not_found"))],
    )
    .await;

    // The audit log: CLI and API actions with their actors, newest first, paged.
    let (s, audit) = ops.get("/v1/admin/audit?limit=100", &admin).await;
    assert_eq!(s, 200);
    let entries = audit["items"].as_array().unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let has = |actor: &str, action: &str, target: &str| {
        entries
            .iter()
            .any(|e| e["actor"] == actor && e["action"] == action && e["target"] == target)
    };
    let ops_actor = "admin:ops";
    for (actor, action, target) in [
        ("cli", "user.add", "alice"),
        ("cli", "token.create", admin_id.as_str()),
        (ops_actor, "admin.new_ip", admin_id.as_str()),
        (ops_actor, "user.add", "bob"),
        (ops_actor, "token.create", bob_token_id.as_str()),
        (ops_actor, "pairing.create", "bob"),
        (&format!("device:{device}"), "device.pair", device.as_str()),
        (ops_actor, "device.remove", device.as_str()),
        (ops_actor, "token.revoke", bob_token_id.as_str()),
        (ops_actor, "user.remove", "bob"),
    ] {
        assert!(
            has(actor, action, target),
            "no {actor} {action} {target} in {audit}"
        );
    }
    let api_entry = entries.iter().find(|e| e["actor"] == ops_actor).unwrap();
    assert_eq!(api_entry["ip"], "127.0.0.1");
    let cli_entry = entries.iter().find(|e| e["actor"] == "cli").unwrap();
    assert_eq!(cli_entry["ip"], Value::Null);
    let (_, first_page) = ops.get("/v1/admin/audit?limit=2", &admin).await;
    let last = first_page["items"][1]["id"].as_i64().unwrap();
    let (_, next) = ops
        .get(&format!("/v1/admin/audit?limit=2&before={last}"), &admin)
        .await;
    assert_eq!(
        next["items"][0]["id"],
        json!(ids[2]),
        "the next page starts after the last"
    );
    ops.refuses(
        &admin,
        &[(
            "GET",
            "/v1/admin/audit?before=x",
            None,
            (400, "usage_error"),
        )],
    )
    .await;
    // `reflecto admin audit --json` is the same log.
    let cli_audit: Value =
        serde_json::from_str(&ops.ok(&["audit", "--json", "--limit", "100"])).unwrap();
    assert_eq!(cli_audit.as_array().unwrap()[..], entries[..]);

    // No secret made in this test is in the audit log or anywhere in the relay's log.
    let log = ops.serving.log.lock().unwrap().join("\n");
    assert!(
        log.contains("/v1/admin/"),
        "the log is the relay's request log"
    );
    for secret in &secrets {
        assert!(
            !audit.to_string().contains(secret.as_str()),
            "{secret} in the audit log"
        );
        assert!(
            !log.contains(secret.as_str()),
            "{secret} in the relay's log"
        );
    }
    assert!(!log.contains(text_sent), "message text in the relay's log");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_api_on_sqlite() {
    let ops = Ops::start(None);
    operator_story(&ops, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_api_on_postgres() {
    let Some(url) = pg_database() else { return };
    let ops = Ops::start(Some(&url));
    operator_story(&ops, "postgres").await;
}

/// `reflecto admin --server URL` prints what `reflecto admin` on the store prints, and exits
/// the same way.
#[test]
fn admin_through_the_server_prints_what_the_local_form_prints() {
    let ops = Ops::start(None);
    ops.ok(&["user", "add", "alice"]);
    let admin = ops.ok(&["token", "create", "--admin", "--label", "laptop"]);

    let out = ops.remote(&admin, &["user", "add", "carol"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "carol\n");
    let (local, remote) = (
        ops.local(&["user", "add", "carol"]),
        ops.remote(&admin, &["user", "add", "carol"]),
    );
    assert_eq!(local.status.code(), Some(2));
    assert_eq!(remote.status.code(), local.status.code());
    assert_eq!(
        text(&remote.stderr),
        text(&local.stderr),
        "the same refusal"
    );

    let out = ops.remote(
        &admin,
        &["token", "create", "--user", "carol", "--label", "ci"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim().starts_with("rfk_live_"));
    assert!(
        text(&out.stderr).starts_with("created tok_")
            && text(&out.stderr).contains(" for carol (shown once")
    );

    ops.ok(&[
        "device",
        "add",
        "--user",
        "carol",
        "--label",
        "desk",
        "--type",
        "extension",
    ]);
    for args in [
        &["device", "list"][..],
        &["device", "list", "--json"],
        &["device", "list", "--user", "carol"],
        &["user", "list"],
        &["user", "list", "--json"],
        &["token", "list"],
        &["token", "list", "--json", "--user", "carol"],
    ] {
        // Remote first: it records the admin token's use, which `token list` shows.
        let remote = ops.remote(&admin, args);
        let local = ops.local(args);
        assert!(
            remote.status.success(),
            "{args:?}: {}",
            text(&remote.stderr)
        );
        assert_eq!(text(&remote.stdout), text(&local.stdout), "{args:?}");
    }
    let (local, remote) = (
        ops.local(&["device", "list", "--user", "nobody"]),
        ops.remote(&admin, &["device", "list", "--user", "nobody"]),
    );
    assert_eq!(
        (remote.status.code(), text(&remote.stderr)),
        (local.status.code(), text(&local.stderr))
    );

    let out = ops.remote(&admin, &["pair", "--user", "carol"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let code = text(&out.stdout);
    assert!(
        code.trim().len() == 6 && code.trim().bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(
        text(&out.stderr),
        text(&ops.local(&["pair", "--user", "carol"]).stderr)
    );

    // The audit log reads the same both ways, and names the remote actions' actor.
    let (local, remote) = (ops.local(&["audit"]), ops.remote(&admin, &["audit"]));
    assert_eq!(text(&remote.stdout), text(&local.stdout));
    assert!(
        text(&local.stdout).contains("\tadmin:laptop\tuser.add\tcarol\t127.0.0.1"),
        "{}",
        text(&local.stdout)
    );

    // What needs the store itself says so; a sender token or none is refused as on the API.
    let out = ops.remote(&admin, &["backup", "/tmp/x.db"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let sender = ops.ok(&["token", "create", "--user", "alice", "--label", "s"]);
    let out = ops.remote(&sender, &["user", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).starts_with("error[forbidden]"),
        "{}",
        text(&out.stderr)
    );
    let out = ops.remote("", &["user", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).starts_with("error[no_stored_token]"),
        "{}",
        text(&out.stderr)
    );

    // `reflecto login --admin` stores the token beside the profile's sender token; `admin
    // --server` then finds it (and `--token-stdin` reads one).
    let config = ops._data.path().join("login");
    let no_keyring = || {
        let mut cmd = Command::new(BIN);
        cmd.env("REFLECTO_CONFIG_DIR", &config)
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .env_remove("REFLECTO_ADMIN_TOKEN")
            .env_remove("REFLECTO_PROFILE");
        cmd
    };
    let url = ops.serving.url.as_str();
    stdout_of(fed(
        no_keyring().args(["login", "--admin", "--insecure-storage", "--server", url]),
        &admin,
    ));
    let local_users = text(&ops.local(&["user", "list"]).stdout);
    let stored = no_keyring()
        .args(["admin", "--server", url, "user", "list"])
        .output();
    assert_eq!(stdout_of(stored.unwrap()), local_users);
    let piped = fed(
        no_keyring()
            .args(["admin", "--server", url, "--token-stdin", "user", "list"])
            .env("REFLECTO_CONFIG_DIR", ops._data.path().join("empty")),
        &admin,
    );
    assert_eq!(stdout_of(piped), local_users);
}

/// `command` run with `line` on its stdin, to its end.
fn fed(command: &mut Command, line: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    child.wait_with_output().unwrap()
}

/// The live feed's delivery events come from the worker's recorded outcomes: a phone's FCM
/// delivery (through the fake FCM) is one `delivery` event with `delivered`.
#[tokio::test(flavor = "multi_thread")]
async fn the_live_feed_hears_a_delivery_outcome() {
    let relay = crate::harness::Relay::start(crate::harness::no_limits()).await;
    let (token, phone, _) = relay.alice();
    let fake = crate::fake_fcm::FakeFcm::start().await;
    let worker = fake.worker(relay.state().relay.clone());
    let mut feed = relay.state().relay.admin_events();
    let id = relay
        .api()
        .send(&token, json!({"message": "deployed", "device": "pixel"}))
        .await;
    let sent = feed.recv().await.unwrap();
    assert_eq!(
        serde_json::to_value(&sent).unwrap(),
        json!({"type": "send", "id": id, "user": "alice", "devices": [phone]})
    );
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let outcome = feed.recv().await.unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        json!({"type": "delivery", "id": id, "device_id": phone, "state": "delivered"})
    );

    // A desktop's outcome is its stream's ack (SPEC §1.19: every delivery outcome).
    let (desk, credential) = relay.extension("desk");
    let id = relay
        .api()
        .send(&token, json!({"message": "backup done", "device": "desk"}))
        .await;
    let _sent = feed.recv().await.unwrap();
    let mut events = crate::harness::SseEvents::new(relay.api().stream(&credential).await);
    let (seq, name, _) = events
        .next_event(tokio::time::Instant::now() + std::time::Duration::from_secs(30))
        .await
        .expect("the desk's event");
    assert_eq!(name, "notification");
    relay.api().ack(&credential, &[seq]).await;
    let outcome = feed.recv().await.unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        json!({"type": "delivery", "id": id, "device_id": desk, "state": "delivered"})
    );
}

/// Review finding: a NUL byte in a path or query reached PostgreSQL, which refuses it as text,
/// and came back as a 500. Names, ids, labels and receipts with one are refused before the
/// store: 400 `usage_error` on the operator API, 404 for a receipt.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_byte_in_a_path_or_query_is_refused_before_postgresql() {
    let Some(url) = pg_database() else { return };
    let relay = crate::harness::Relay::start_on_postgres(&url, crate::harness::no_limits()).await;
    let (token, _, _) = relay.alice();
    let admin = relay.admin(&["token", "create", "--admin", "--label", "nul"]);
    let admin = admin.lines().next().unwrap().trim().to_owned();
    let http = relay.http();
    for (method, path, want) in [
        ("DELETE", "/v1/admin/users/%00", 400),
        ("DELETE", "/v1/admin/tokens/%00", 400),
        ("DELETE", "/v1/admin/devices/a%00b", 400),
        ("GET", "/v1/admin/messages?user=%00", 400),
        ("GET", "/v1/admin/tokens?user=%00", 400),
        ("GET", "/v1/admin/devices?user=%00", 400),
    ] {
        let request = match method {
            "DELETE" => http.delete(format!("{}{path}", relay.url)),
            _ => http.get(format!("{}{path}", relay.url)),
        };
        let response = request.bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status().as_u16(), want, "{method} {path}");
    }
    let response = http
        .post(format!("{}/v1/admin/pairings", relay.url))
        .bearer_auth(&admin)
        .json(&json!({"user": "al\u{0}ice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    for path in ["/1/receipts/%00.json", "/1/receipts/%00/cancel.json"] {
        let request = if path.ends_with("cancel.json") {
            http.post(format!("{}{path}?token={token}", relay.url))
        } else {
            http.get(format!("{}{path}?token={token}", relay.url))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
}
