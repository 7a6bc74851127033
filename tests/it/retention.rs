//! SPEC §1.10's expiry without FCM and §1.14's retention and backups, with time moved by a
//! manual clock and the maintenance round driven by hand; the store's file modes under a
//! permissive umask.

use crate::harness::{BIN, ManualClock, Relay, admin, eventually_blocking, no_limits};
use reflecto::relay::retention::Retention;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// A relay on a manual clock keeping finished messages for `retention`, and alice's token.
async fn keeping(retention: &str) -> (std::sync::Arc<ManualClock>, Relay, String) {
    let clock = ManualClock::now();
    let retention = retention.parse::<Retention>().unwrap();
    let relay = Relay::start_with(no_limits(), clock.clone(), |c| c.retention = retention).await;
    let (token, _, _) = relay.alice();
    (clock, relay, token)
}

async fn maintain(relay: &Relay) {
    reflecto::relay::maintain_once(&relay.state())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_zero_android_job_expires_without_fcm() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(no_limits(), clock.clone(), |_| {}).await;
    let (token, _, _) = relay.alice();
    let id = relay
        .api()
        .send(&token, json!({"message": "m", "device": "pixel", "ttl": 0}))
        .await;
    clock.advance(Duration::from_millis(1));
    maintain(&relay).await;
    let (code, body) = relay.api().status_reply(&token, &id).await;
    assert_eq!(code, 200);
    assert_eq!(body["deliveries"][0]["state"], "expired");
    assert_eq!(body["deliveries"][0]["last_error"], "ttl_expired");
    // The beat that runs this round in a live relay is well inside the promised 30 s.
    assert!(reflecto::relay::MAINTENANCE_BEAT <= Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_messages_are_pruned_after_retention() {
    let (clock, relay, token) = keeping("1h").await;
    let short = relay
        .api()
        .send(
            &token,
            json!({"message": "m", "device": "pixel", "ttl": 60}),
        )
        .await;
    let long = relay
        .api()
        .send(&token, json!({"message": "m", "device": "pixel"}))
        .await;

    clock.advance(Duration::from_secs(61));
    maintain(&relay).await;
    assert_eq!(
        relay.api().status(&token, &short).await["deliveries"][0]["state"],
        "expired"
    );

    // Finished 59 minutes ago: kept.
    clock.advance(Duration::from_secs(59 * 60));
    maintain(&relay).await;
    assert_eq!(relay.api().status_reply(&token, &short).await.0, 200);

    // Finished over an hour ago: gone with its jobs. The unfinished one stays, whatever its age.
    clock.advance(Duration::from_secs(2 * 60));
    maintain(&relay).await;
    assert_eq!(relay.api().status_reply(&token, &short).await.0, 404);
    assert_eq!(
        relay.count(&format!(
            "SELECT COUNT(*) FROM jobs WHERE message_id = '{short}'"
        )),
        0
    );
    let (code, body) = relay.api().status_reply(&token, &long).await;
    assert_eq!(
        (code, body["deliveries"][0]["state"].as_str()),
        (200, Some("queued"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_retention_keeps_finished_messages() {
    let (clock, relay, token) = keeping("0").await;
    let id = relay
        .api()
        .send(&token, json!({"message": "m", "device": "pixel", "ttl": 0}))
        .await;
    clock.advance(Duration::from_secs(365 * 86_400));
    maintain(&relay).await;
    maintain(&relay).await;
    assert_eq!(
        relay.api().status(&token, &id).await["deliveries"][0]["state"],
        "expired"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn data_dir_is_private_under_umask_000() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("new").join("data");
    let mut serve = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000; exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#)
        .arg(BIN)
        .arg(&data)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The relay holds the store open: its -wal and -shm exist while it runs.
    let wal = data.join("reflecto.db-wal");
    let shm = data.join("reflecto.db-shm");
    eventually_blocking("the store's -wal and -shm", Duration::from_secs(10), || {
        wal.exists() && shm.exists()
    });
    let modes: Vec<(String, u32)> = [&data, &data.join("reflecto.db"), &wal, &shm]
        .iter()
        .map(|p| (p.display().to_string(), mode(p)))
        .collect();
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(modes[0].1, 0o700, "{modes:?}");
    assert_eq!(
        mode(&root.path().join("new")) & 0o077,
        0,
        "a parent it created is open"
    );
    for (path, m) in &modes[1..] {
        assert_eq!(*m, 0o600, "{path}");
    }
    // A backup written under the same umask is private too.
    let backup = root.path().join("copy.db");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000; exec "$0" admin --data-dir "$1" backup "$2""#)
        .arg(BIN)
        .arg(&data)
        .arg(&backup)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&backup), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_while_running_restores() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let first = relay
        .api()
        .send(&token, json!({"message": "before the backup"}))
        .await;
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("backup.db");
    // Sends keep committing while the backup runs.
    let sending = {
        let (url, token) = (relay.url.clone(), token.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..100 {
                let resp = http
                    .post(format!("{url}/v1/send"))
                    .bearer_auth(&token)
                    .json(&json!({"message": format!("during {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
    };
    let (dir, path) = (relay.dir.path().to_owned(), file.clone());
    tokio::task::spawn_blocking(move || {
        admin(&dir, &["backup", path.to_str().unwrap()]);
    })
    .await
    .unwrap();
    sending.await.unwrap();
    assert_eq!(mode(&file), 0o600);
    assert!(!copy.path().join("backup.db.partial").exists());

    // Restore: copy it into a stopped relay's (here: a fresh) data dir and start that relay.
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored_dir.path().join("reflecto.db")).unwrap();
    let restored = Relay::start_in_dir(restored_dir).await;
    assert_eq!(restored.api().status_reply(&token, &first).await.0, 200);
    let resp = restored
        .send_json(&token, json!({"message": "after restore"}))
        .await;
    assert_eq!(
        resp.status(),
        200,
        "the restored store serves the old token"
    );
}
