//! SPEC §1.15 through a real relay: a send's `key` is checked, travels in the envelope and
//! shows in the status; a later send with the same key supersedes what a device has not
//! received yet, so a desktop that reconnects reads only the newest, on both backends.

use crate::harness::{Relay, alice_with_desk, code_of, no_limits, pg_database, send_each};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn a_key_outside_the_rule_is_invalid_key_and_not_a_string_invalid_body() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let api = relay.api();
    for (key, code) in [
        (json!(""), "invalid_key"),
        (json!("k".repeat(65)), "invalid_key"),
        (json!("build 42"), "invalid_key"),
        (json!("ключ"), "invalid_key"),
        (json!(42), "invalid_body"),
        (json!(["k"]), "invalid_body"),
    ] {
        let (status, body) = api
            .send_reply(&token, json!({"message": "m", "key": key}))
            .await;
        assert_eq!((status, code_of(&body).as_str()), (400, code), "{key}");
    }
    let (status, _) = api
        .send_reply(&token, json!({"message": "m", "key": "k".repeat(64)}))
        .await;
    assert_eq!(status, 200);
}

/// Three states of one build while the desktop is away: on reconnecting it reads only the last,
/// with its key in the envelope; the status shows the others superseded.
async fn a_desktop_that_reconnects_reads_only_the_newest_of_a_key(relay: Relay) {
    let (token, desk, credential) = alice_with_desk(&relay);
    let api = relay.api();
    let texts = ["running", "tests", "passed"];
    let ids = send_each(&api, &token, &texts, json!({"key": "ci:42"})).await;
    let other = api.send(&token, json!({"message": "other"})).await;
    let events = api
        .sync_events(&credential, None, 3, Duration::from_secs(3))
        .await;
    let events: Vec<Value> = events
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    let read: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(read, [ids[2].as_str(), other.as_str()]);
    assert_eq!(events[0]["envelope"]["payload"]["key"], "ci:42");
    assert_eq!(events[0]["envelope"]["payload"]["message"], "passed");
    assert!(events[1]["envelope"]["payload"].get("key").is_none());
    for (id, state) in [
        (&ids[0], "superseded"),
        (&ids[1], "superseded"),
        (&ids[2], "queued"),
    ] {
        let status = api.status(&token, id).await;
        assert_eq!(status["key"], "ci:42", "{status}");
        assert_eq!(status.delivery(&desk)["state"], state, "{status}");
    }
    assert_eq!(api.status(&token, &other).await["key"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desktop_that_reconnects_reads_only_the_newest_of_a_key_on_sqlite() {
    a_desktop_that_reconnects_reads_only_the_newest_of_a_key(Relay::start(no_limits()).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desktop_that_reconnects_reads_only_the_newest_of_a_key_on_postgres() {
    let Some(url) = pg_database() else { return };
    a_desktop_that_reconnects_reads_only_the_newest_of_a_key(
        Relay::start_on_postgres(&url, no_limits()).await,
    )
    .await;
}
