//! Issue 17's trips about limits (SPEC §1.8, §2.2), through the real relay and the real
//! binary: `send --wait` is not rate limited with the default limits and makes few requests,
//! the defaults are a self-hosted relay's with the hosted tier a preset, and a successful
//! authenticated read is checked against the per-IP layers but not charged (a refused one is).

use crate::harness::{BIN, Relay, Sender, get_status, only, token_check};
use reflecto::server::limits::{Layer, Limits};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// How many `GET /v1/messages/{id}` the relay has answered, from its own metrics.
async fn status_requests(relay: &Relay) -> u64 {
    let text = relay.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("reflecto_http_requests_total{route=\"/v1/messages/{id}\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Trip 1: `reflecto send "to all" --wait 10` with a device that has not acked failed within
/// 5 s with `rate_limit_exceeded: ip_minute` (exit 5): every 250 ms poll was charged to an
/// `ip_minute` of 20. Now the wait lasts its 10 s, ends 7 naming the devices by label, and
/// follows the status with a handful of long-poll requests.
#[tokio::test(flavor = "multi_thread")]
async fn send_wait_is_not_rate_limited_with_default_limits() {
    let s = Sender::start(Limits::default()).await;
    let started = Instant::now();
    let mut send = s.command("send");
    send.args(["to all", "--wait", "10"]);
    let out = tokio::task::spawn_blocking(move || send.output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("error[not_delivered]"), "{stderr}");
    assert!(!stderr.contains("rate_limit"), "{stderr}");
    // The devices by label beside their ids: the desktop nobody listens on, the phone without FCM.
    assert!(
        stderr.contains("\"laptop\" (queued)") && stderr.contains("\"pixel\" (queued)"),
        "{stderr}"
    );
    assert!(took >= Duration::from_secs(10), "waited only {took:?}");
    let requests = status_requests(&s.relay).await;
    assert!(
        (1..=3).contains(&requests),
        "{requests} status requests for one 10 s wait"
    );
}

/// `reflecto serve --print-config` with `args` and `env` (and no other REFLECTO_ variable):
/// the resolved `[limits]` table.
fn printed_limits(args: &[&str], env: &[(&str, &str)]) -> toml::Table {
    let mut command = Command::new(BIN);
    command.args(["serve", "--print-config"]).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("REFLECTO_") {
            command.env_remove(name);
        }
    }
    let out = command.envs(env.iter().copied()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    config["limits"].as_table().unwrap().clone()
}

fn limits_of(table: &toml::Table) -> [i64; 5] {
    [
        "token_burst",
        "token_monthly",
        "receiver_daily",
        "ip_minute",
        "ip_hour",
    ]
    .map(|layer| table[layer].as_integer().unwrap())
}

/// Trip 2: the defaults were the hosted free tier (500 sends a month, 20 requests a minute),
/// which stopped a cron job within two days. Now they are a self-hosted relay's, the hosted
/// numbers are `--limits hosted` / `REFLECTO_LIMITS=hosted` / `preset = "hosted"`, and a layer
/// set explicitly anywhere overrides the preset.
#[test]
fn the_defaults_are_self_hosted_and_hosted_is_a_preset() {
    assert_eq!(
        limits_of(&printed_limits(&[], &[])),
        [60, 0, 10000, 300, 3000]
    );
    let hosted = [60, 500, 1000, 20, 200];
    assert_eq!(
        limits_of(&printed_limits(&["--limits", "hosted"], &[])),
        hosted
    );
    assert_eq!(
        limits_of(&printed_limits(&[], &[("REFLECTO_LIMITS", "hosted")])),
        hosted
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "[limits]\npreset = \"hosted\"\nip_hour = 1000\n").unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(
        limits_of(&printed_limits(&["--config", file], &[])),
        [60, 500, 1000, 20, 1000],
        "the file's layer over the file's preset"
    );
    assert_eq!(
        limits_of(&printed_limits(
            &["--config", file, "--limit-ip-minute", "100"],
            &[("REFLECTO_LIMIT_TOKEN_MONTHLY", "0")]
        )),
        [60, 0, 1000, 100, 1000],
        "flags and variables over the preset"
    );
    assert_eq!(
        limits_of(&printed_limits(
            &["--config", file, "--limits", "self-hosted"],
            &[]
        )),
        [60, 0, 10000, 300, 1000],
        "a flag's preset under the file's layer"
    );
    let refused = Command::new(BIN)
        .args(["serve", "--print-config", "--limits", "free"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

/// SPEC §1.8: with `ip_minute` 5, twenty status reads and five token checks all succeed (each
/// checked, none charged); refused reads (404, 401) are charged, and once they and the send
/// fill the minute every request is refused 429.
#[tokio::test(flavor = "multi_thread")]
async fn authenticated_reads_are_checked_but_not_charged_and_refused_ones_are() {
    let relay = Relay::start(only(Layer::IpMinute, 5)).await;
    let (token, _, _) = relay.alice();
    let id = relay.api().send(&token, json!({"message": "hi"})).await; // charged: 1
    for _ in 0..20 {
        let (status, _, _) = get_status(&relay.url, &token, &id, &[]).await;
        assert_eq!(status, 200);
    }
    for _ in 0..5 {
        assert_eq!(token_check(&relay, &token).await.status(), 200);
    }
    let (status, _, _) = get_status(&relay.url, &token, &id, &[]).await;
    assert_eq!(status, 200, "still room: nothing was charged");
    let unknown = "msg_00000000000000000000000000000000";
    for (token, expected) in [
        (token.as_str(), 404),
        ("rf_live_nope", 401),
        (token.as_str(), 404),
    ] {
        let (status, _, _) = get_status(&relay.url, token, unknown, &[]).await;
        assert_eq!(status, expected);
    }
    let wrong = token_check(&relay, "rf_live_nope").await;
    assert_eq!(wrong.status(), 401); // charged: 5
    let (status, _, body) = get_status(&relay.url, &token, &id, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["details"]["resource"], "ip_minute");
    assert_eq!(token_check(&relay, &token).await.status(), 429);
}
