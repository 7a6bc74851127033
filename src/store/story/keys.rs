//! Addressable notifications (SPEC §1.15): a send with a key supersedes the unfinished jobs of
//! the owner's earlier messages with that key, from any of the owner's tokens, in the commit
//! that accepts it; finished jobs, other keys and other owners are untouched, and a device that
//! was offline gets only the newest message of a key.

use super::*;
use crate::api::status::DeliveryState;

story!(
    a_send_with_a_key_supersedes_the_earlier_ones_unfinished_jobs,
    a_key_belongs_to_its_owner_alone,
    an_offline_device_gets_only_the_newest_of_a_key,
);

/// The messages of the FCM jobs a worker claims at `now`, in claim order.
async fn fcm_due(store: &Store, now: i64) -> Vec<String> {
    let claimed = claim(store, now, 10, &[Channel::Fcm]).await;
    claimed.into_iter().map(|j| j.message_id).collect()
}

async fn a_send_with_a_key_supersedes_the_earlier_ones_unfinished_jobs(store: &Store) {
    let (alice, token, _) = user_with_token(store, "alice").await;
    let (other_token, _) = token_of(store, "alice", "cron").await;
    let phone = device(store, "alice", android("pixel")).await;
    let desk = device(store, "alice", extension("desk")).await;
    // m1: the phone's job is delivered, the desk's is pending on its stream.
    accept(store, keyed(&token, "m1", "build", &[&phone, &desk], T0)).await;
    let claimed = claim(store, T0, 10, &[Channel::Fcm]).await;
    assert_eq!(claimed.len(), 1);
    complete(store, claimed[0].lease(), JobOutcome::Delivered, T0).await;
    // m2 supersedes m1's pending event, not its delivered job.
    accept(store, keyed(&token, "m2", "build", &[&phone], T0 + 1)).await;
    use DeliveryState::*;
    assert_eq!(
        delivery_states(store, "m1", alice.id).await,
        [Delivered, Superseded]
    );
    // m2 is leased by a worker when m3 arrives; m_other has another key, m_plain none.
    let leased = claim(store, T0 + 1, 10, &[Channel::Fcm]).await;
    assert_eq!(leased.len(), 1);
    accept(store, keyed(&token, "m_other", "deploy", &[&phone], T0 + 2)).await;
    accept(store, send(&token, "m_plain", &[&desk], T0 + 2)).await;
    let depth = store.queue_depth().await.unwrap();
    // m3 comes from another token of the same owner.
    accept(
        store,
        keyed(&other_token, "m3", "build", &[&phone, &desk], T0 + 3),
    )
    .await;
    assert_eq!(
        delivery_states(store, "m1", alice.id).await,
        [Delivered, Superseded]
    );
    assert_eq!(delivery_states(store, "m2", alice.id).await, [Superseded]);
    assert_eq!(delivery_states(store, "m_other", alice.id).await, [Queued]);
    assert_eq!(delivery_states(store, "m_plain", alice.id).await, [Queued]);
    assert_eq!(
        delivery_states(store, "m3", alice.id).await,
        [Queued, Queued]
    );
    // One superseded job left the queue, two new ones joined it.
    assert_eq!(store.queue_depth().await.unwrap(), depth + 1);
    let m3 = status_of(store, "m3", alice.id).await;
    assert_eq!(m3.key.as_deref(), Some("build"));
    let plain = status_of(store, "m_plain", alice.id).await;
    assert_eq!(plain.key, None);
    // A superseded job is final: the worker's late outcome does not land, nothing claims it.
    complete(store, leased[0].lease(), JobOutcome::Delivered, T0 + 4).await;
    assert_eq!(delivery_states(store, "m2", alice.id).await, [Superseded]);
    let due = fcm_due(store, T0 + 5).await;
    assert_eq!(due, ["m_other", "m3"]);
    // Nor does expiry touch it.
    store.expire_jobs(T0 + DAY).await.unwrap();
    assert_eq!(delivery_states(store, "m2", alice.id).await, [Superseded]);
}

async fn a_key_belongs_to_its_owner_alone(store: &Store) {
    let (alice, alice_token, [alice_phone]) = user_with(store, "alice", [android("pixel")]).await;
    let (_, bob_token, [bob_phone]) = user_with(store, "bob", [android("pixel")]).await;
    accept(
        store,
        keyed(&alice_token, "a1", "backup", &[&alice_phone], T0),
    )
    .await;
    accept(
        store,
        keyed(&bob_token, "b1", "backup", &[&bob_phone], T0 + 1),
    )
    .await;
    assert_eq!(
        delivery_states(store, "a1", alice.id).await,
        [DeliveryState::Queued]
    );
}

async fn an_offline_device_gets_only_the_newest_of_a_key(store: &Store) {
    let (_, token, [desk, phone]) =
        user_with(store, "alice", [extension("desk"), android("pixel")]).await;
    for (i, id) in ["running", "tests", "passed"].into_iter().enumerate() {
        accept(
            store,
            keyed(&token, id, "ci:42", &[&desk, &phone], T0 + i as i64),
        )
        .await;
    }
    accept(store, send(&token, "unrelated", &[&desk, &phone], T0 + 5)).await;
    // The desk reconnects from the start of its stream, the phone's channel comes back.
    let events = stream_of(store, &desk).await;
    let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["passed", "unrelated"]);
    let mut due = fcm_due(store, T0 + 10).await;
    due.sort();
    assert_eq!(due, ["passed", "unrelated"]);
    // An ack of a superseded event (sent before the newer one arrived) does not revive it.
    let all = stream_of(store, &desk).await;
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    let first_seq = seqs[0] - 2;
    let acked = store
        .ack_stream_events(&desk.id, vec![first_seq], T0 + 11)
        .await
        .unwrap();
    assert!(acked.is_empty(), "{acked:?}");
}
