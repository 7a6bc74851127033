//! SPEC §2.2's long poll on `GET /v1/messages/{id}` through a real relay: every 200 has an
//! `ETag`, a current `If-None-Match` is 304, `Prefer: wait=N` holds the request until the
//! status changes (an ack ends it at once, on this relay or on another one on the same
//! PostgreSQL database) or N seconds pass (304), and a relay that stops lets it go at once.

use crate::harness::{Relay, alice_with_desk, get_status, no_limits, pg_database};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// A hang guard: generous, so a loaded machine never fails a test for being slow.
const PATIENCE: Duration = Duration::from_secs(30);

/// `GET /v1/messages/{id}` naming `etag` and asking to wait `wait` seconds, on its own task.
fn hold(
    url: &str,
    token: &str,
    id: &str,
    etag: &str,
    wait: u32,
) -> tokio::task::JoinHandle<(u16, Option<String>, Value)> {
    let (url, token, id, etag) = (
        url.to_owned(),
        token.to_owned(),
        id.to_owned(),
        etag.to_owned(),
    );
    tokio::spawn(async move {
        let prefer = format!("wait={wait}");
        get_status(
            &url,
            &token,
            &id,
            &[("if-none-match", &etag), ("prefer", &prefer)],
        )
        .await
    })
}

/// The ETag the status of `id` has now.
async fn etag_now(url: &str, token: &str, id: &str) -> String {
    let (_, etag, _) = get_status(url, token, id, &[]).await;
    etag.expect("every 200 has an ETag")
}

/// Reads the one event on the stream of `credential` and acks it: when the ack was sent.
async fn ack_the_one_event(relay: &Relay, credential: &str) -> Instant {
    let api = relay.api();
    let (seq, _) = api.one_event(credential).await;
    let acked_at = Instant::now();
    assert_eq!(api.ack(credential, &[seq]).await["acked"], 1);
    acked_at
}

/// The `held` wait is answered 200 (within the hang guard) with the delivered status and a
/// new ETag.
async fn assert_answered_delivered(
    held: tokio::task::JoinHandle<(u16, Option<String>, Value)>,
    etag: &str,
) {
    let (status, tag, body) = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries"][0]["state"], "delivered");
    assert_ne!(tag.unwrap(), etag);
}

/// A relay with alice, a desktop device "desk" nothing listens on, and one message to it:
/// (relay, token, message id, desk's stream credential).
async fn one_waiting_message() -> (Relay, String, String, String) {
    one_waiting_message_on(Relay::start(no_limits()).await).await
}

/// [`one_waiting_message`] on `relay`.
async fn one_waiting_message_on(relay: Relay) -> (Relay, String, String, String) {
    let (token, _, credential) = alice_with_desk(&relay);
    let id = relay
        .api()
        .send(&token, json!({"message": "hi", "device": "desk"}))
        .await;
    (relay, token, id, credential)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_current_etag_is_answered_304_without_a_body() {
    let (relay, token, id, _) = one_waiting_message().await;
    let (status, etag, body) = get_status(&relay.url, &token, &id, &[]).await;
    assert_eq!(status, 200);
    let etag = etag.expect("every 200 has an ETag");
    assert_eq!(body["deliveries"][0]["label"], "desk", "{body}");
    let (again, same, _) = get_status(&relay.url, &token, &id, &[]).await;
    assert_eq!(
        (again, same.as_deref()),
        (200, Some(etag.as_str())),
        "stable"
    );

    let (status, tag, body) =
        get_status(&relay.url, &token, &id, &[("if-none-match", &etag)]).await;
    assert_eq!(
        (status, tag.as_deref(), body),
        (304, Some(etag.as_str()), Value::Null)
    );
    // Another tag (one the client had before a change) gets the status at once.
    let (status, _, body) =
        get_status(&relay.url, &token, &id, &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.as_str());
    // The owner's check comes first: another token's If-None-Match learns nothing.
    let (status, _, _) =
        get_status(&relay.url, "rf_live_nope", &id, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ack_ends_a_held_wait_at_once() {
    let (relay, token, id, credential) = one_waiting_message().await;
    let etag = etag_now(&relay.url, &token, &id).await;
    let started = Instant::now();
    let held = hold(&relay.url, &token, &id, &etag, 30);
    // Held, not answered: nothing has changed yet.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !held.is_finished(),
        "the request is held while the status is unchanged"
    );

    let acked_at = ack_the_one_event(&relay, &credential).await;
    assert_answered_delivered(held, &etag).await;
    let answered_after_ack = acked_at.elapsed();
    // Woken by the ack, not by the 30 s passing (nor the 5 s recheck).
    assert!(
        answered_after_ack < Duration::from_secs(4) && started.elapsed() < Duration::from_secs(25),
        "answered {answered_after_ack:?} after the ack"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_without_a_change_ends_304_after_its_seconds() {
    let (relay, token, id, _) = one_waiting_message().await;
    let etag = etag_now(&relay.url, &token, &id).await;
    let started = Instant::now();
    let (status, tag, body) = get_status(
        &relay.url,
        &token,
        &id,
        &[("if-none-match", &etag), ("prefer", "wait=2")],
    )
    .await;
    let held = started.elapsed();
    assert_eq!(
        (status, tag.as_deref(), body),
        (304, Some(etag.as_str()), Value::Null)
    );
    assert!(held >= Duration::from_millis(1900), "held only {held:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_wait_ends_at_once_when_the_relay_stops() {
    let (mut relay, token, id, _) = one_waiting_message().await;
    let etag = etag_now(&relay.url, &token, &id).await;
    let held = hold(&relay.url, &token, &id, &etag, 60);
    // Held, not answered: the stop below is what must end it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished());
    let running = relay.running.take().unwrap();
    let stopping = Instant::now();
    let _ = running.shutdown.send(());
    let (status, tag, _) = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert_eq!((status, tag.as_deref()), (304, Some(etag.as_str())));
    running.task.await.unwrap().unwrap();
    // Well inside the drain period: the held request did not keep the relay up.
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ack_on_one_relay_ends_a_wait_held_by_another() {
    let Some(url) = pg_database() else { return };
    let a = Relay::start_on_postgres(&url, no_limits()).await;
    let b = Relay::start_on_postgres(&url, no_limits()).await;
    let (a, token, id, credential) = one_waiting_message_on(a).await;
    let etag = etag_now(&b.url, &token, &id).await;
    let held = hold(&b.url, &token, &id, &etag, 30);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!held.is_finished(), "held on relay B");
    let acked_at = ack_the_one_event(&a, &credential).await;
    assert_answered_delivered(held, &etag).await;
    // B sees A's commit on its next look (every second), long before the 30 s.
    assert!(
        acked_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        acked_at.elapsed()
    );
}
