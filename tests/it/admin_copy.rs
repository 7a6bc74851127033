//! `reflecto admin copy --to URL` (SPEC §3): a single-box relay's SQLite store moves into an
//! empty PostgreSQL database, and the same token, device credential, message statuses and
//! monthly counts work there; a non-empty target is refused and left unchanged.

use crate::harness::{BIN, Relay, admin, create_alice, pg_database, read_sse_events};
use reflecto::server::limits::Limits;
use std::process::Command;
use std::time::Duration;

fn monthly(limit: u64) -> Limits {
    Limits {
        token_burst: 0,
        token_monthly: limit,
        receiver_daily: 0,
        ip_minute: 0,
        ip_hour: 0,
    }
}

fn copy(data_dir: &std::path::Path, url: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(data_dir)
        .args(["copy", "--to", url])
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_copied_store_serves_the_same_tokens_devices_statuses_and_counts() {
    let Some(url) = tokio::task::spawn_blocking(pg_database).await.unwrap() else {
        return;
    };
    // A single-box relay with a history: three sends, one of them to a device with a credential.
    let mut sqlite = Relay::start(monthly(10)).await;
    let (token, _phone, _desk) = sqlite.alice();
    let (_laptop, credential) = sqlite.extension("laptop");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            sqlite
                .api()
                .send(
                    &token,
                    // The first one repeats (SPEC §1.17): its `urgent` row moves too.
                    if i == 0 {
                        serde_json::json!({"message": "before the move 0", "priority": "urgent", "retry": 30, "expire": 600})
                    } else {
                        serde_json::json!({"message": format!("before the move {i}")})
                    },
                )
                .await,
        );
    }
    // A cron job's heartbeat (SPEC §1.18) moves with its state and deadline.
    let pinged = reqwest::Client::new()
        .post(format!(
            "{}/v1/heartbeats/backup?every=1h&grace=5m",
            sqlite.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pinged.status(), 200);
    let heartbeats = |relay: &Relay| {
        let api = relay.api();
        let token = token.clone();
        async move {
            let response = api.get_ok("/v1/heartbeats", Some(&token)).await;
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let heartbeats_before = heartbeats(&sqlite).await;
    assert_eq!(heartbeats_before["heartbeats"][0]["name"], "backup");
    let before = sqlite.api().status(&token, &ids[0]).await;
    assert_eq!(before["repeat"]["retry"], 30, "{before}");
    let dir = sqlite.dir.path().to_path_buf();

    // The relay must be stopped first: its lock is held while it runs.
    let refused = copy(&dir, &url);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let old = sqlite.running.take().unwrap();
    let _ = old.shutdown.send(());
    old.task.await.unwrap().unwrap();

    let copied = copy(&dir, &url);
    assert!(copied.status.success(), "{copied:?}");
    let report = String::from_utf8_lossy(&copied.stderr);
    assert!(
        report.contains("messages") && report.contains("vapid"),
        "{report}"
    );

    let pg = Relay::start_on_postgres(&url, monthly(10)).await;
    // The old token works, and the month's three sends were carried over.
    let resp = pg
        .send_json(&token, serde_json::json!({"message": "after the move"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ratelimit-resource"], "token_monthly");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "6");
    assert_eq!(heartbeats(&pg).await, heartbeats_before);
    // Statuses of messages sent before the move read the same.
    assert_eq!(*pg.api().status(&token, &ids[0]).await, *before);
    // The old device credential streams every unacknowledged event, old and new.
    let stream = pg.api().stream(&credential).await;
    let events = read_sse_events(stream, 4, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events[0].1.contains(&ids[0]), "{events:?}");

    // A second copy into the now non-empty database is refused and changes nothing there.
    let again = copy(&dir, &url);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("empty database"),
        "{again:?}"
    );
    let users = Command::new(BIN)
        .args(["admin", "--database", &url, "user", "list"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&users.stdout).lines().count(), 1);
    let resp = pg
        .send_json(&token, serde_json::json!({"message": "still counting"}))
        .await;
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "5");
}

#[tokio::test]
async fn copy_refuses_a_database_holding_other_tables_and_leaves_it_alone() {
    let Some(url) = tokio::task::spawn_blocking(pg_database).await.unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    create_alice(dir.path());
    let cluster = reflecto::pg_cluster::shared().unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let psql = |sql: &str| {
        let out = Command::new(reflecto::pg_cluster::binaries().unwrap().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port().to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", &db, "-tAc", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    psql("CREATE TABLE someone_elses (x int)");
    let out = copy(dir.path(), &url);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{out:?}"
    );
    assert_eq!(
        psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"),
        "1",
        "nothing was created"
    );
    // The SQLite store is still the relay's.
    assert!(admin(dir.path(), &["user", "list"]).contains("alice"));
}
