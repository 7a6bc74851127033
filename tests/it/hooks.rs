//! SPEC §1.18 hooks through a real relay: each built-in source's realistic payloads reach a
//! desktop stream with the mapped fields; a resolved Alertmanager group replaces its firing
//! notification; a body of another shape is a 400, never a 5xx; operator templates render and
//! fail as 400s naming themselves; and a real Alertmanager (Debian's `prometheus-alertmanager`)
//! pages and resolves through the hook.

use crate::harness::{Relay, code_of, eventually, field_of_each, free_port, no_limits, tools};
use reflecto::hooks::HookTemplateConfig;
use serde_json::{Value, json};
use std::time::Duration;

const AM_FIRING: &str = include_str!("../fixtures/hooks/alertmanager_firing.json");
const AM_RESOLVED: &str = include_str!("../fixtures/hooks/alertmanager_resolved.json");
const GRAFANA: &str = include_str!("../fixtures/hooks/grafana_firing.json");
const GH_RUN: &str = include_str!("../fixtures/hooks/github_workflow_run.json");
const GH_PUSH: &str = include_str!("../fixtures/hooks/github_push.json");
const GH_RELEASE: &str = include_str!("../fixtures/hooks/github_release.json");
const GH_ISSUES: &str = include_str!("../fixtures/hooks/github_issues.json");
const GH_PULL: &str = include_str!("../fixtures/hooks/github_pull_request.json");
const GH_PING: &str = include_str!("../fixtures/hooks/github_ping.json");

/// Request headers of a case, as (name, value).
type Headers = Vec<(&'static str, &'static str)>;

/// A hook call: `path` under the relay, the bearer token if any, extra headers, the body.
async fn call(
    relay: &Relay,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = relay
        .http()
        .post(format!("{}{path}", relay.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"));
    (status, body)
}

/// The Alertmanager fixture posted to `path` with `token` (if any): see [`call`].
async fn fire(relay: &Relay, path: &str, token: Option<&str>) -> (u16, Value) {
    call(relay, path, token, &[], AM_FIRING).await
}

/// The pending events of the desktop `credential` (up to `n`, within `wait`), as JSON.
async fn events(relay: &Relay, credential: &str, n: usize, wait: Duration) -> Vec<Value> {
    relay
        .api()
        .sync_events(credential, None, n, wait)
        .await
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect()
}

/// An Alertmanager page as the built-in hook maps it: `title` and `message`, urgent, tagged
/// alertmanager and firing.
fn assert_firing(payload: &Value, title: &str, message: &str) {
    assert_eq!(payload["title"], title);
    assert_eq!(payload["message"], message);
    assert_eq!(payload["priority"], "urgent");
    assert_eq!(payload["tags"], json!(["alertmanager", "firing"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_built_in_hook_reaches_a_desktop_with_the_mapped_fields() {
    let relay = Relay::start(no_limits()).await;
    let (token, credential) = relay.alice_with_desk();
    let bearer = Some(token.as_str());
    let capability = |source: &str| format!("/v1/hooks/{source}/{token}");
    let mut ids = Vec::new();
    let calls: [(String, Option<&str>, &str, &str); 7] = [
        ("/v1/hooks/alertmanager".into(), bearer, "", AM_FIRING),
        (capability("grafana"), None, "", GRAFANA),
        (capability("github"), None, "workflow_run", GH_RUN),
        (capability("github"), None, "push", GH_PUSH),
        (capability("github"), None, "release", GH_RELEASE),
        (capability("github"), None, "issues", GH_ISSUES),
        ("/v1/hooks/github".into(), bearer, "pull_request", GH_PULL),
    ];
    for (path, token, event, body) in calls {
        let headers: &[(&str, &str)] = if event.is_empty() {
            &[]
        } else {
            &[("x-github-event", event)]
        };
        let (status, answer) = call(&relay, &path, token, headers, body).await;
        assert_eq!(status, 200, "{path} {event}: {answer}");
        assert_eq!(
            answer["delivered_to"].as_array().unwrap().len(),
            3,
            "{answer}"
        );
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    let read = events(&relay, &credential, ids.len(), Duration::from_secs(10)).await;
    let got: Vec<&str> = read.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids);
    let payload = |i: usize| &read[i]["envelope"]["payload"];
    let source: Vec<&Value> = read.iter().map(|e| &e["envelope"]["source"]).collect();
    assert!(
        source.iter().all(|s| *s == "ci"),
        "the token's label: {source:?}"
    );

    let am = payload(0);
    assert_firing(
        am,
        "[FIRING:2] DiskFull",
        "Disk /var on db-1 is 97% full\nDisk /srv on db-2 is 93% full",
    );
    assert!(am["key"].as_str().unwrap().starts_with("am:"), "{am}");
    assert_eq!(
        am["url"],
        "http://prometheus.example:9090/graph?g0.expr=disk_used_ratio+%3E+0.9&g0.tab=1"
    );
    let grafana = payload(1);
    assert_eq!(grafana["title"], "[FIRING:2]  (blue)");
    assert_eq!(grafana["tags"], json!(["grafana", "firing"]));
    assert_eq!(grafana["priority"], "urgent");
    let run = payload(2);
    assert_eq!(run["title"], "✘ CI failed on main");
    assert_eq!(run["priority"], "high");
    assert_eq!(run["key"], "gh:run:30433642");
    assert_eq!(
        run["message"],
        "Codertocat/Hello-World: Update README.md (run #562)"
    );
    assert_eq!(
        run["url"],
        "https://github.com/Codertocat/Hello-World/actions/runs/30433642"
    );
    assert_eq!(payload(3)["title"], "Codertocat pushed 2 commits to main");
    assert_eq!(payload(4)["title"], "Release v0.2.0: Backups that tell");
    assert_eq!(
        payload(5)["title"],
        "Issue #1 opened: Spelling error in the README file"
    );
    assert_eq!(
        payload(6)["title"],
        "PR #2 merged: Update the README with new information."
    );
    for i in 2..7 {
        assert!(
            payload(i)["message"]
                .as_str()
                .unwrap()
                .starts_with("Codertocat/Hello-World"),
            "{}",
            payload(i)
        );
        assert_eq!(payload(i)["tags"][0], "github");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_ping_or_an_ignored_event_sends_nothing() {
    let (relay, token) = Relay::with_alice().await;
    let path = format!("/v1/hooks/github/{token}");
    let (status, answer) = call(&relay, &path, None, &[("x-github-event", "ping")], GH_PING).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"id": null, "delivered_to": [], "warnings": []})
    );
    let star = r#"{"action":"created","repository":{"full_name":"a/b"}}"#;
    let (status, answer) = call(&relay, &path, None, &[("x-github-event", "star")], star).await;
    assert_eq!((status, &answer["id"]), (200, &Value::Null));
    assert_eq!(answer["warnings"], json!(["github event 'star' ignored"]));
    // GitHub's default encoding: the JSON in a form field `payload`.
    let form = format!(
        "payload={}",
        percent_encoding::utf8_percent_encode(GH_PING, percent_encoding::NON_ALPHANUMERIC)
    );
    let response = relay
        .http()
        .post(format!("{}{path}", relay.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "ping")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 0);
}

/// The state of the owner's messages with `key` changes in place: a device that was away
/// reads only the resolved group, and the firing one is superseded.
#[tokio::test(flavor = "multi_thread")]
async fn a_resolved_alertmanager_group_supersedes_its_firing_notification() {
    let (relay, token) = Relay::with_alice().await;
    let (desk, credential) = relay.extension("desk");
    let path = "/v1/hooks/alertmanager";
    let (_, firing) = fire(&relay, path, Some(&token)).await;
    let (_, resolved) = call(&relay, path, Some(&token), &[], AM_RESOLVED).await;
    let read = events(&relay, &credential, 2, Duration::from_secs(3)).await;
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0]["id"], resolved["id"]);
    let payload = &read[0]["envelope"]["payload"];
    assert_eq!(payload["title"], "[RESOLVED] DiskFull");
    assert_eq!(payload["priority"], "low");
    let status = relay
        .api()
        .status(&token, firing["id"].as_str().unwrap())
        .await;
    assert_eq!(status.delivery(&desk)["state"], "superseded", "{status}");
    assert_eq!(status["key"], payload["key"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_the_tools_shape_is_400_never_5xx() {
    let (relay, token) = Relay::with_alice().await;
    let t = Some(token.as_str());
    let none: &[(&str, &str)] = &[];
    let event = |e: &'static str| vec![("x-github-event", e)];
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("alertmanager", none.to_vec(), "not json"),
        ("alertmanager", none.to_vec(), "[]"),
        ("alertmanager", none.to_vec(), r#"{"message":"hello"}"#),
        ("alertmanager", none.to_vec(), GH_PUSH),
        (
            "alertmanager",
            none.to_vec(),
            r#"{"status":"firing","alerts":{}}"#,
        ),
        ("grafana", none.to_vec(), r#"{"title":"t","message":"m"}"#),
        ("github", none.to_vec(), GH_PUSH),
        ("github", event("push"), AM_FIRING),
        ("github", event("workflow_run"), r#"{"action":"completed"}"#),
        ("github", event("issues"), "\"text\""),
    ];
    for (source, headers, body) in cases {
        let path = format!("/v1/hooks/{source}");
        let (status, answer) = call(&relay, &path, t, &headers, body).await;
        assert_eq!(
            (status, code_of(&answer).as_str()),
            (400, "invalid_body"),
            "{source} {headers:?} {}: {answer}",
            &body[..body.len().min(40)]
        );
    }
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 0);

    // A bad override is the field's own 400; one too many bytes is 413; no token is 401.
    let (status, answer) = fire(&relay, "/v1/hooks/alertmanager?priority=loud", t).await;
    assert_eq!(
        (status, code_of(&answer).as_str()),
        (400, "invalid_priority")
    );
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(256 * 1024));
    let (status, answer) = call(&relay, "/v1/hooks/alertmanager", t, &[], big).await;
    assert_eq!(
        (status, code_of(&answer).as_str()),
        (413, "payload_too_large")
    );
    assert_eq!(answer["error"]["details"]["max"], 256 * 1024);
    let (status, _) = fire(&relay, "/v1/hooks/alertmanager", None).await;
    assert_eq!(status, 401);
    // An unknown source is 404 before the token is looked at.
    for path in ["/v1/hooks/jenkins", "/v1/hooks/jenkins/rfk_live_x"] {
        let (status, answer) = fire(&relay, path, None).await;
        assert_eq!(
            (status, code_of(&answer).as_str()),
            (404, "not_found"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn query_overrides_choose_device_priority_tags_and_ttl() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, laptop) = relay.alice();
    let path = "/v1/hooks/alertmanager?device=desktop&priority=low&tags=db,night&ttl=600";
    let (status, answer) = fire(&relay, path, Some(&token)).await;
    assert_eq!(status, 200, "{answer}");
    let targets = field_of_each(&answer["delivered_to"], "device_id");
    assert_eq!(targets, [laptop.as_str()]);
    let envelope: Value = serde_json::from_str(relay.envelopes().last().unwrap()).unwrap();
    assert_eq!(envelope["payload"]["priority"], "low");
    assert_eq!(envelope["payload"]["tags"], json!(["db", "night"]));
    assert_eq!(envelope["payload"]["ttl"], 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_alert_group_is_cut_with_warnings_not_refused() {
    let (relay, token) = Relay::with_alice().await;
    let alerts: Vec<Value> = (0..60)
        .map(|i| {
            json!({"status": "firing", "labels": {"alertname": "Flood", "severity": "info"},
                "annotations": {"summary": format!("instance {i:02} is flooding the queue with retries")}})
        })
        .collect();
    let body = json!({"status": "firing", "groupKey": "flood", "alerts": alerts});
    let (status, answer) = call(
        &relay,
        "/v1/hooks/alertmanager",
        Some(&token),
        &[],
        body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let warnings = answer["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("message truncated to ")),
        "{answer}"
    );
    let envelope = relay.envelopes().pop().unwrap();
    assert!(envelope.len() <= 2048, "{}", envelope.len());
}

fn uptime_template() -> HookTemplateConfig {
    HookTemplateConfig {
        title: Some("{{ monitor.name }} is {{ 'up' if heartbeat.status == 1 else 'down' }}".into()),
        message: "{{ heartbeat.msg }}".into(),
        priority: Some("{{ 'default' if heartbeat.status == 1 else 'high' }}".into()),
        tags: Some("uptime,{{ monitor.type }}".into()),
        url: Some("{{ monitor.url }}".into()),
        key: Some("kuma:{{ monitor.id }}".into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_template_renders_a_notification_and_fails_as_a_400() {
    let relay = Relay::start_with(
        no_limits(),
        std::sync::Arc::new(reflecto::server::SystemClock),
        |c| {
            c.hooks.insert("uptime".into(), uptime_template());
        },
    )
    .await;
    let (token, credential) = relay.alice_with_desk();
    let down = json!({"heartbeat": {"status": 0, "msg": "timeout after 48 s"},
        "monitor": {"id": 7, "name": "Blog", "type": "http", "url": "https://blog.example/"}});
    let path = format!("/v1/hooks/uptime/{token}");
    let (status, answer) = call(&relay, &path, None, &[], down.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let read = events(&relay, &credential, 1, Duration::from_secs(5)).await;
    let payload = &read[0]["envelope"]["payload"];
    assert_eq!(payload["title"], "Blog is down");
    assert_eq!(payload["message"], "timeout after 48 s");
    assert_eq!(payload["priority"], "high");
    assert_eq!(payload["tags"], json!(["uptime", "http"]));
    assert_eq!(payload["key"], "kuma:7");
    let (status, answer) = call(&relay, &path, None, &[], r#"{"monitor":{}}"#).await;
    assert_eq!((status, code_of(&answer).as_str()), (400, "invalid_body"));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("hook template 'uptime' failed on field '"),
        "{message}"
    );
}

#[tokio::test]
async fn a_template_named_like_a_built_in_stops_the_relay_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::harness::config(dir.path(), no_limits());
    config.hooks.insert("github".into(), uptime_template());
    let Err(refused) = reflecto::relay::start(&config).await else {
        panic!("a relay started with a template named github");
    };
    assert_eq!(refused.code, reflecto::api::ErrorCode::UsageError);
    assert!(
        refused.message.contains("'github' is a built-in hook"),
        "{}",
        refused.message
    );
}

/// A real Alertmanager in a temp dir, stopped (killed) when dropped.
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Alertmanager whose one receiver is the relay's hook, with `token` in
    /// `http_config.authorization`, grouping by alert name and flushing every second.
    async fn start(relay: &Relay, token: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"global:
  resolve_timeout: 5s
route:
  receiver: reflecto
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: reflecto
    webhook_configs:
      - url: '{}/v1/hooks/alertmanager'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: '{token}'
"#,
            relay.url
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = std::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a lone instance, whatever a packaged service runs beside it.
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let ready = &format!("{}/-/ready", am.url);
        eventually(
            "alertmanager ready",
            Duration::from_secs(20),
            || async move {
                reqwest::get(ready)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        am
    }

    /// `POST /api/v2/alerts` with one alert.
    async fn post(&self, alert: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&json!([alert]))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_alertmanager_pages_and_its_resolution_replaces_the_page() {
    if !tools(&["prometheus-alertmanager"], "prometheus-alertmanager") {
        return;
    }
    let (relay, token) = Relay::with_alice().await;
    let (desk, credential) = relay.extension("desk");
    let am = Alertmanager::start(&relay, &token).await;
    let started = chrono::Utc::now() - chrono::Duration::minutes(5);
    let alert = |ends: Option<chrono::DateTime<chrono::Utc>>| {
        let mut alert = json!({
            "labels": {"alertname": "BackupLate", "job": "backup", "severity": "critical"},
            "annotations": {"summary": "The nightly backup has not run for 26 h"},
            "startsAt": started.to_rfc3339(),
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=backup_age"
        });
        if let Some(ends) = ends {
            alert["endsAt"] = ends.to_rfc3339().into();
        }
        alert
    };
    am.post(alert(None)).await;
    let (relay, credential) = (&relay, credential.as_str());
    // The page arrives; the desktop reads it and does not ack it (the person is away).
    let page = eventually(
        "the firing notification",
        Duration::from_secs(30),
        || async move {
            events(relay, credential, 1, Duration::from_millis(500))
                .await
                .pop()
        },
    )
    .await;
    let payload = &page["envelope"]["payload"];
    assert_firing(
        payload,
        "[FIRING:1] BackupLate",
        "The nightly backup has not run for 26 h",
    );
    assert_eq!(
        payload["url"],
        "http://prometheus.example:9090/graph?g0.expr=backup_age"
    );
    let key = payload["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("am:") && key.len() == 35, "{key}");

    // Resolved: posted again with an end in the past.
    am.post(alert(Some(
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )))
    .await;
    let resolved = eventually(
        "the resolved notification alone",
        Duration::from_secs(30),
        || async move {
            let pending = events(relay, credential, 2, Duration::from_millis(500)).await;
            match pending.as_slice() {
                [only] if only["envelope"]["payload"]["title"] == "[RESOLVED] BackupLate" => {
                    Ok(only.clone())
                }
                other => Err(other.to_vec()),
            }
        },
    )
    .await;
    let payload = &resolved["envelope"]["payload"];
    assert_eq!(payload["key"], key.as_str());
    assert_eq!(payload["priority"], "low");
    assert_eq!(payload["tags"], json!(["alertmanager", "resolved"]));
    let status = relay
        .api()
        .status(&token, page["id"].as_str().unwrap())
        .await;
    assert_eq!(status.delivery(&desk)["state"], "superseded", "{status}");
}

/// An unknown source is answered like an unknown route: it charges no per-IP quota, while a
/// known one is counted like any send (SPEC §1.7 step 1).
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_source_charges_nothing_and_a_known_one_is_a_send() {
    let limits = reflecto::server::limits::Limits {
        ip_minute: 2,
        ..no_limits()
    };
    let relay = Relay::start(limits).await;
    let (token, _, _) = relay.alice();
    for _ in 0..5 {
        let (status, _) = call(&relay, "/v1/hooks/jenkins", Some(&token), &[], "{}").await;
        assert_eq!(status, 404);
    }
    let key = [("idempotency-key", "am-once")];
    let keyed = || {
        call(
            &relay,
            "/v1/hooks/alertmanager",
            Some(&token),
            &key,
            AM_FIRING,
        )
    };
    let (status, first) = keyed().await;
    assert_eq!(status, 200, "{first}");
    // A repeated Idempotency-Key replays the first answer, as on /v1/send.
    let (status, again) = keyed().await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 1);
    let (status, answer) = fire(&relay, "/v1/hooks/alertmanager", Some(&token)).await;
    assert_eq!(
        (status, code_of(&answer).as_str()),
        (429, "rate_limit_exceeded")
    );
}
