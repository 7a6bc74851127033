//! `/openapi.json` tells the truth about a live relay: every status a probe meets is declared
//! for its operation (with the declared content type), and schemathesis (`pip install
//! schemathesis`) finds nothing with `--checks all`.

use crate::harness::{Relay, no_limits, required};
use reflecto::server::limits::Limits;
use serde_json::Value;
use std::process::Command;

async fn document(relay: &Relay) -> Value {
    relay
        .http()
        .get(format!("{}/openapi.json", relay.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// (method, path) of every operation, with `{param}`s filled with `x`.
fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            out.push((method.clone(), path.clone(), concrete));
        }
    }
    out
}

/// Sends one probe and checks its status is declared with the declared content type.
async fn probe(
    relay: &Relay,
    doc: &Value,
    (method, path, concrete): &(String, String, String),
    auth: Option<&str>,
    body: Option<(&'static str, Vec<u8>)>,
) -> Option<u16> {
    let url = format!("{}{}", relay.url, concrete);
    let mut request = relay
        .http()
        .request(method.to_uppercase().parse().unwrap(), url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let mut oversized = false;
    if let Some((content_type, bytes)) = body {
        oversized = bytes.len() > 64 * 1024;
        request = request.header("content-type", content_type).body(bytes);
    }
    let response = match request.send().await {
        Ok(response) => response,
        // A route that answers before reading (401) closes with the body unread; the kernel
        // may then reset the connection before the answer is read. Nothing to check then.
        Err(_) if oversized => return None,
        Err(e) => panic!("{} {path}: {e}", method.to_uppercase()),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let declared = &doc["paths"][path.as_str()][method.as_str()]["responses"][status.to_string()];
    assert!(
        declared.is_object(),
        "{} {path} answered {status}, which it does not declare",
        method.to_uppercase()
    );
    if let Some(content) = declared["content"].as_object() {
        let media = content_type.split(';').next().unwrap_or("").trim();
        assert!(
            content.contains_key(media),
            "{} {path} {status} came as '{content_type}', declared {:?}",
            method.to_uppercase(),
            content.keys().collect::<Vec<_>>()
        );
    }
    Some(status)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_a_probe_meets_is_declared() {
    let (relay, token) = Relay::with_alice().await;
    let doc = document(&relay).await;
    let bearer = format!("Bearer {token}");
    // One byte over the cap: the chunk that crosses it holds the last byte, so a route that
    // reads the body reads all of it.
    let oversized = vec![b'a'; 64 * 1024 + 1];
    let mut seen = std::collections::BTreeSet::new();
    for op in operations(&doc) {
        // Never open the endless stream with a credential that could read it.
        let streams = op.1 == "/v1/sync";
        seen.insert(probe(&relay, &doc, &op, None, None).await);
        seen.insert(probe(&relay, &doc, &op, Some("Bearer rfk_live_x"), None).await);
        seen.insert(probe(&relay, &doc, &op, Some("Basic abc"), None).await);
        if !streams {
            seen.insert(probe(&relay, &doc, &op, Some(&bearer), None).await);
        }
        if op.0 != "get" {
            let bodies: [(&str, Vec<u8>); 5] = [
                ("application/json", b"{".to_vec()),
                ("application/json", b"[]".to_vec()),
                ("application/json", br#"{"message":""}"#.to_vec()),
                ("application/xml", b"<a/>".to_vec()),
                ("text/plain", oversized.clone()),
            ];
            for body in bodies {
                seen.insert(probe(&relay, &doc, &op, Some(&bearer), Some(body)).await);
            }
        }
    }
    // The probes reached the interesting answers, so the assertions above meant something.
    for status in [200, 400, 401, 413] {
        assert!(
            seen.contains(&Some(status)),
            "no probe was answered {status}: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rate_limited_route_declares_429() {
    let limits = Limits {
        ip_minute: 1,
        ..no_limits()
    };
    let relay = Relay::start(limits).await;
    let doc = document(&relay).await;
    let mut limited = 0;
    for op in operations(&doc) {
        // A fresh relay per operation would be slow; the per-IP window is shared, so after the
        // first request every route behind the limit answers 429.
        let _ = probe(&relay, &doc, &op, None, None).await;
        if probe(&relay, &doc, &op, None, None).await == Some(429) {
            limited += 1;
        }
    }
    assert!(limited >= 5, "only {limited} routes answered 429");
}

/// `schemathesis` or `st`, if installed.
fn schemathesis() -> Option<String> {
    ["schemathesis", "st"].into_iter().find_map(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| name.to_owned())
    })
}

/// Keeps every well-formed `Idempotency-Key` unique: a repeated key replays the first answer
/// whatever the body (SPEC §1.1), which is state, not schema. Malformed keys are kept, so
/// their 400 is still tested.
const HOOKS: &str = r#"
import re, uuid
import schemathesis

VALID = re.compile(r"^[!-~]{1,64}$")

@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID.match(value):
            headers[name] = uuid.uuid4().hex
"#;

fn config(hooks: &str, token: &str, credential: &str, message: &str, admin: &str) -> String {
    format!(
        r#"hooks = "{hooks}"

# The relay counts UTF-8 bytes and JSON Schema counts characters: with ASCII data the two agree,
# so every maxLength is exact (the document says so in each description).
[generation]
codec = "ascii"

[auth.openapi.bearer]
bearer = "{token}"

[auth.openapi.device]
bearer = "{credential}"

{admin}
# 413: schema-valid fields can together exceed the 2048-byte envelope (a rule across fields,
# stated in SendRequest's description).
[checks.positive_data_acceptance]
expected-statuses = [200, 401, 403, 404, 413, 429]

# A schema-valid If-None-Match can match the current status (`*`, alone or in a list): 304.
[[operations]]
include-path = "/v1/messages/{{id}}"
parameters = {{ "path.id" = "{message}" }}
checks.positive_data_acceptance.expected-statuses = [200, 304, 401, 403, 404, 413, 429]

# A schema-valid response need not be one the message offers (400 invalid_response). Never
# 429: acknowledgements are not rate limited (SPEC §1.7).
[[operations]]
include-path = "/v1/messages/{{id}}/acknowledge"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 404, 413]

# A schema-valid ping can still be refused: a name's first ping needs `every`, and `every` and
# `grace` have ranges no pattern states (400 invalid_heartbeat).
# (By operation id: a path and a method given together select every POST and that path.)
[[operations]]
include-operation-id = "ping_heartbeat"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 404, 413, 429]

# A schema-valid code matches no live code (400 invalid_pairing_code).
[[operations]]
include-path = "/v1/devices/pair"
checks.positive_data_acceptance.expected-statuses = [200, 400, 429]

[[operations]]
include-path = "/v1/sync"
max-stream-events = 1

# A hook's body is the tool's own JSON, whose shape depends on the source (and for github on
# X-GitHub-Event): a body the schema allows may still not be that tool's shape (400).
[[operations]]
include-tag = "hooks"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 413, 429]

# `retry` and `expire` are schema-valid alone, but go together, only with priority urgent and
# with `expire` within the ttl (SPEC §1.17): a rule across fields, 400 invalid_repeat.
[[operations]]
include-path-regex = "^/v1/send"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 404, 413, 429]

# A schema-valid receipt is one no send was given (404); the token is the real one, since a
# fuzzed token only ever meets 401.
[[operations]]
include-path-regex = "^/1/receipts/"
parameters = {{ "query.token" = "{token}" }}
checks.positive_data_acceptance.expected-statuses = [200, 401, 404, 429]

# The operator API (SPEC §1.19): a removal answers 204; a schema-valid user name can exist
# already (409 conflict); a token request can name a user with `admin: true` (400
# usage_error), a rule across fields stated in the description.
[[operations]]
include-operation-id = "admin_create_token"
checks.positive_data_acceptance.expected-statuses = [200, 400, 404]

[[operations]]
include-path-regex = "^/v1/admin/"
checks.positive_data_acceptance.expected-statuses = [200, 204, 404, 409]

# Removing a user removes her tokens: a token a scenario created is rightly 404 once a later
# step removed its user, which this check (it knows only of the token's own DELETE) reads as
# a created resource gone missing.
[[operations]]
include-operation-id = "admin_revoke_token"
checks.ensure_resource_availability.enabled = false
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing() {
    // The operator API runs on a relay of its own: its stateful tests remove what they
    // find listed (alice, her token), which the other operations' fixtures need.
    schemathesis_on(&["--exclude-path-regex", "^/v1/admin/"], false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_in_the_operator_api() {
    // The live feed waits for sends that schemathesis never makes: tests/it/admin_api.rs
    // reads it instead.
    let filter = &[
        "--include-path-regex",
        "^/v1/admin/",
        "--exclude-operation-id",
        "admin_events",
    ];
    schemathesis_on(filter, true).await;
}

/// schemathesis with `--checks all` on the operations `filter` (its command-line options)
/// selects, against a relay with alice, a desktop device, a message and an admin token.
/// The admin token is configured only for the operator API's run: given to the whole
/// document, schemathesis also put it in the Pushover shim's body `token`.
async fn schemathesis_on(filter: &'static [&'static str], operator: bool) {
    let Some(tool) = schemathesis() else {
        required(false, "schemathesis", "pip install schemathesis");
        return;
    };
    let relay = Relay::start(no_limits()).await;
    let (token, credential) = relay.alice_with_desk();
    let sent: Value = relay
        .send_json(&token, serde_json::json!({"message": "hello"}))
        .await
        .json()
        .await
        .unwrap();
    let message = sent["id"].as_str().unwrap();
    let admin = match operator {
        true => {
            let token = relay.admin(&["token", "create", "--admin", "--label", "schemathesis"]);
            format!("[auth.openapi.admin]\nbearer = \"{token}\"\n")
        }
        false => String::new(),
    };
    let dir = relay.dir.path();
    let hooks = dir.join("hooks.py");
    std::fs::write(&hooks, HOOKS).unwrap();
    let config_path = dir.join("schemathesis.toml");
    std::fs::write(
        &config_path,
        config(
            hooks.to_str().unwrap(),
            &token,
            &credential,
            message,
            &admin,
        ),
    )
    .unwrap();
    let url = format!("{}/openapi.json", relay.url);
    let work = dir.to_path_buf();
    // A deeper run, or a replay of a CI failure's printed seed:
    // REFLECTO_SCHEMATHESIS_EXAMPLES=500 REFLECTO_SCHEMATHESIS_SEED=… cargo test --test it schemathesis
    let examples =
        std::env::var("REFLECTO_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "20".to_owned());
    let seed = std::env::var("REFLECTO_SCHEMATHESIS_SEED").ok();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(tool)
            .current_dir(&work)
            .arg("--config-file")
            .arg(&config_path)
            .args(["run", &url, "--checks", "all", "--max-examples", &examples])
            .args(filter)
            .args(seed.iter().flat_map(|seed| ["--seed", seed.as_str()]))
            // One worker: with two threads, hypothesis's `ast.parse` of a filter's lambda
            // fails at random on Python 3.11 ("AST constructor recursion depth mismatch",
            // CPython gh-106905), a runtime error that fails the run with nothing found.
            .args(["--no-color", "--request-timeout", "10", "--workers", "1"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The case count, for the record (`cargo test -- --nocapture` shows it).
    let count = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.contains(" generated") && l.starts_with(|c: char| c.is_ascii_digit()));
    if let Some(line) = count {
        eprintln!("schemathesis: {}", line.trim());
    }
    assert!(
        output.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(count.is_some(), "schemathesis ran no cases:\n{stdout}");
}
