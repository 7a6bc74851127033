//! The desktop stream over a real connection: replay of unacked events in order, resume after
//! Last-Event-ID, ack, and nothing lost when a connection drops.

use crate::harness::{
    Api, Relay, SseEvents, alice_with_desk, code_of, no_limits, read_sse_events, send_each,
};
use serde_json::{Value, json};
use std::time::Duration;

/// The stream's events through `api` until `n` arrived or `wait` passed: (id, data) pairs.
async fn read_events(
    api: &Api,
    credential: &str,
    last: Option<i64>,
    n: usize,
    wait: Duration,
) -> Vec<(i64, Value)> {
    parsed(api.sync_events(credential, last, n, wait).await)
}

fn parsed(events: Vec<(i64, String)>) -> Vec<(i64, Value)> {
    events
        .into_iter()
        .map(|(id, data)| (id, serde_json::from_str(&data).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replays_resumes_and_acks() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, credential) = alice_with_desk(&relay);
    let api = relay.api();
    let texts = ["one", "two", "three"];
    let ids = send_each(&api, &token, &texts, json!({"device": "desk"})).await;
    let first = api.sync(&credential, None).await;
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let events = parsed(read_sse_events(first, 3, Duration::from_secs(5)).await);
    assert_eq!(
        events.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(events[0].1["id"], ids[0].as_str());
    assert_eq!(events[0].1["envelope"]["payload"]["message"], "one");
    assert_eq!(events[2].1["envelope"]["source"], "ci");

    // The connection dropped without an ack: all three come back; Last-Event-ID resumes after 2.
    assert_eq!(
        read_events(&api, &credential, None, 3, Duration::from_secs(5))
            .await
            .len(),
        3
    );
    let resumed = read_events(&api, &credential, Some(2), 1, Duration::from_secs(5)).await;
    assert_eq!(resumed[0].0, 3);

    assert_eq!(api.ack(&credential, &[1, 2]).await, json!({"acked": 2}));
    let status = api.status(&token, &ids[0]).await;
    assert_eq!(status["deliveries"][0]["state"], "delivered");
    let rest = read_events(&api, &credential, None, 1, Duration::from_secs(5)).await;
    assert_eq!(
        rest.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [3],
        "only the unacked event is replayed"
    );

    // A send while connected arrives live: once the replayed event 3 has come, the stream is
    // connected and past its replay, so event 4 can only come live.
    let mut live = SseEvents::new(api.sync(&credential, None).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    got.extend(live.next(deadline).await);
    relay
        .send_json(&token, json!({"message": "live", "device": "desk"}))
        .await;
    got.extend(live.next(deadline).await);
    let got = parsed(got);
    assert_eq!(got.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(got[1].1["envelope"]["payload"]["message"], "live");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_needs_a_device_credential() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let no_auth = reqwest::get(format!("{}/v1/sync", relay.url))
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let with_sender_token = relay.api().sync(&token, None).await;
    assert_eq!(with_sender_token.status(), 401);
    let body: Value = with_sender_token.json().await.unwrap();
    assert_eq!(code_of(&body), "invalid_token");
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_device_ends_its_open_stream() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let (device_id, credential) = relay.extension("gone");
    let mut stream = relay.api().sync(&credential, None).await;
    assert_eq!(stream.status(), 200);
    relay.admin(&["device", "remove", &device_id]);
    // Only keep-alive comments may arrive before the end; a hang guard well past SPEC's 15 s.
    let ended = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match stream.chunk().await {
                Ok(Some(chunk)) => assert!(
                    !String::from_utf8_lossy(&chunk).contains("event:"),
                    "no event after removal"
                ),
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the removed device's stream stayed open");
    let again = relay.api().sync(&credential, None).await;
    assert_eq!(again.status(), 401);
    assert_eq!(code_of(&again.json().await.unwrap()), "invalid_token");
}
