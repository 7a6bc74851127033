//! The crash test: a relay process accepts sends and dispatches them to the fake FCM, is
//! SIGKILLed mid-dispatch, and restarts on the same store. Every accepted message must reach
//! the fake (deduplicated by id) or be dead-lettered with a reason: nothing is silently lost.

use crate::fake_fcm::FakeFcm;
use crate::harness::{Api, BIN, count, create_alice, within};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The relay process; killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
struct RelayProcess(Child);

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_relay(data: &Path, port: u16, key: &Path, endpoint: &str) -> RelayProcess {
    RelayProcess(
        Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--fcm-endpoint",
                endpoint,
                "--fcm-credentials",
            ])
            .arg(key)
            .args([
                "--limit-token-burst",
                "0",
                "--limit-token-monthly",
                "0",
                "--limit-receiver-daily",
                "0",
                "--limit-ip-minute",
                "0",
                "--limit-ip-hour",
                "0",
            ])
            .env("REFLECTO_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let live = || async {
        http.get(format!("{url}/health/live"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    let ready = within(Duration::from_secs(10), live).await;
    assert!(ready.is_ok(), "relay at {url} never became ready");
}

/// The ids of the messages that reached the fake FCM.
fn reached(fake: &FakeFcm) -> HashSet<String> {
    fake.sends()
        .iter()
        .map(|m| m["message"]["data"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_dispatch_loses_nothing() {
    const SENDS: usize = 300;
    let data = tempfile::tempdir().unwrap();
    // Sends name the android device: the extension's jobs wait for its stream, not for FCM.
    let (token, _, _) = create_alice(data.path());
    let fake = FakeFcm::start().await;
    fake.delay_every_send(Duration::from_millis(150));
    let key = fake.key_file();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let relay = spawn_relay(data.path(), port, key.path(), &fake.url);
    wait_ready(&http, &url).await;
    let api = Api::new(&url);
    let mut accepted = Vec::new();
    for i in 0..SENDS {
        accepted.push(
            api.send(
                &token,
                json!({"message": format!("m{i}"), "device": "pixel"}),
            )
            .await,
        );
    }
    drop(relay); // SIGKILL
    let before_restart = reached(&fake);
    assert!(
        before_restart.len() < SENDS,
        "the kill must land mid-dispatch ({} of {SENDS} already out)",
        before_restart.len()
    );
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM messages") as usize,
        SENDS,
        "every 200 was committed"
    );

    let relay = spawn_relay(data.path(), port, key.path(), &fake.url);
    wait_ready(&http, &url).await;
    let open = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'leased')";
    let finished = within(Duration::from_secs(60), || async {
        count(data.path(), open) == 0
    })
    .await;
    assert!(
        finished.is_ok(),
        "deliveries did not finish after the restart"
    );
    drop(relay);

    let received = reached(&fake);
    let conn = rusqlite::Connection::open(data.path().join("reflecto.db")).unwrap();
    for id in &accepted {
        let (state, error): (String, Option<String>) = conn
            .query_row(
                "SELECT state, last_error FROM jobs WHERE message_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        match state.as_str() {
            "delivered" => assert!(
                received.contains(id),
                "{id} is marked delivered but never reached FCM"
            ),
            "failed" | "expired" => {
                assert!(error.is_some(), "{id} was dead-lettered without a reason")
            }
            other => panic!("{id} ended in state {other}"),
        }
    }
    assert_eq!(
        received.len(),
        SENDS,
        "each accepted message reached the fake, once after dedup by id"
    );
}
