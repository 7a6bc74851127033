//! Clearing a message and acknowledging it (SPEC §1.15, §1.16): what is cancelled, who gets a
//! clear and how it travels (stream event, queued push), that the first acknowledgement wins
//! and clears the message elsewhere, and the status that shows it all.

use super::*;
use crate::api::status::DeliveryState::*;

story!(
    a_clear_cancels_what_waits_and_clears_what_was_received,
    a_clear_by_key_takes_the_newest_and_stays_with_its_owner,
    the_first_acknowledgement_wins_and_clears_the_others,
    an_acknowledgement_must_come_from_a_target_with_an_offered_response,
    concurrent_acknowledgements_have_one_winner,
    a_clear_of_a_job_in_flight_outlives_its_outcome_and_waits_for_its_lease,
);

/// A send of `id` to `targets` whose actions offer `responses`.
fn asking(
    token: &TokenRecord,
    id: &str,
    responses: &[&str],
    targets: &[&DeviceRecord],
    now: i64,
) -> NewSend {
    NewSend {
        responses: responses.iter().map(|r| r.to_string()).collect(),
        ..send(token, id, targets, now)
    }
}

/// The devices of `targets`, sorted.
fn sorted_ids(targets: &[Target]) -> Vec<&str> {
    let mut ids: Vec<&str> = targets.iter().map(|t| t.device_id.as_str()).collect();
    ids.sort();
    ids
}

async fn a_clear_cancels_what_waits_and_clears_what_was_received(store: &Store) {
    let devices = [
        android("pixel"),
        webpush("browser"),
        extension("desk"),
        extension("laptop"),
        android("offline"),
    ];
    let (alice, token, [phone, browser, desk, laptop, offline]) =
        user_with(store, "alice", devices).await;
    let targets = [&phone, &browser, &desk, &laptop, &offline];
    accept(store, send(&token, "m1", &targets, T0)).await;
    // The phone and the browser get it through their channels; the desk acks its event; the
    // laptop's event is on its stream, unacked; `offline` never came back.
    let claimed = claim(store, T0, 100, &Channel::ALL).await;
    let delivered = claimed
        .iter()
        .filter(|j| j.device_id != offline.id)
        .map(|j| (j.lease(), JobOutcome::Delivered))
        .collect();
    store.complete_jobs(delivered, T0).await.unwrap();
    let retry = claimed
        .iter()
        .filter(|j| j.device_id == offline.id)
        .map(|j| {
            let outcome = JobOutcome::RetryAt {
                at_ms: T0 + MINUTE,
                error: "UNAVAILABLE".into(),
            };
            (j.lease(), outcome)
        })
        .collect();
    store.complete_jobs(retry, T0).await.unwrap();
    ack_all(store, &desk, T0).await;

    let cleared = clear(store, &alice, MessageRef::Id("m1".into()), T0 + 1).await;
    assert_eq!(cleared.message_id, "m1");
    assert_eq!((cleared.cancelled, cleared.cleared), (2, 3));
    let got = sorted_ids(&cleared.targets);
    let mut want = [phone.id.as_str(), browser.id.as_str(), desk.id.as_str()];
    want.sort();
    assert_eq!(got, want, "only the devices that received it");
    assert_eq!(
        delivery_states(store, "m1", alice.id).await,
        [Delivered, Delivered, Delivered, Cancelled, Cancelled],
        "the clears are not deliveries of the message"
    );
    let status = status_of(store, "m1", alice.id).await;
    assert_eq!(status.cleared_at, Some(T0 + 1));
    assert_eq!(status.acknowledged, None);

    // The desk's stream carries the clear as an event of its own; the laptop's is gone.
    let events = stream_of(store, &desk).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].message_id.as_str()),
        (JobKind::Clear, "m1")
    );
    assert!(events[0].payload.is_none(), "a clear is never sealed");
    assert!(stream_of(store, &laptop).await.is_empty());
    // The phone and the browser each have one clear job queued; `offline` has nothing due.
    let due = deliver_due(store, T0 + 2 * MINUTE).await;
    let mut due: Vec<(&str, JobKind)> =
        due.iter().map(|j| (j.device_id.as_str(), j.kind)).collect();
    due.sort();
    let mut want = vec![
        (phone.id.as_str(), JobKind::Clear),
        (browser.id.as_str(), JobKind::Clear),
    ];
    want.sort();
    assert_eq!(due, want);
    // A clear is acked like any event, and then gone.
    assert_eq!(ack_all(store, &desk, T0 + 3).await.len(), 1);
    assert!(stream_of(store, &desk).await.is_empty());
    assert_eq!(store.queue_depth().await.unwrap(), 0);

    // Twice: nothing more to cancel or clear, and the first clear's time stays.
    let again = clear(store, &alice, MessageRef::Id("m1".into()), T0 + 4).await;
    assert_eq!((again.cancelled, again.cleared), (0, 0));
    assert!(again.targets.is_empty());
    let status = status_of(store, "m1", alice.id).await;
    assert_eq!(status.cleared_at, Some(T0 + 1));
    // A job that is cancelled stays so: a late outcome, expiry, or another send do not touch it.
    store.expire_jobs(T0 + DAY).await.unwrap();
    assert_eq!(
        delivery_states(store, "m1", alice.id).await,
        [Delivered, Delivered, Delivered, Cancelled, Cancelled]
    );
}

async fn a_clear_by_key_takes_the_newest_and_stays_with_its_owner(store: &Store) {
    let (alice, token, [desk]) = user_with(store, "alice", [extension("desk")]).await;
    let (bob, bob_token, [bob_desk]) = user_with(store, "bob", [extension("desk")]).await;
    let alices = |id: &str, now| keyed(&token, id, "ci:42", &[&desk], now);
    accept(store, alices("k1", T0)).await;
    accept(store, alices("k2", T0 + 1)).await;
    accept(
        store,
        keyed(&bob_token, "b1", "ci:42", &[&bob_desk], T0 + 2),
    )
    .await;
    let cleared = clear(store, &alice, MessageRef::Key("ci:42".into()), T0 + 3).await;
    assert_eq!((cleared.message_id.as_str(), cleared.cancelled), ("k2", 1));
    assert_eq!(delivery_states(store, "b1", bob.id).await, [Queued]);
    // Another owner's message, by id or by key, is not there for alice.
    for which in [MessageRef::Id("b1".into()), MessageRef::Key("nope".into())] {
        let none = store.clear_message(alice.id, which, T0 + 4).await.unwrap();
        assert!(none.is_none());
    }
    assert_eq!(delivery_states(store, "b1", bob.id).await, [Queued]);
    // A later send with the key does not supersede a clear waiting for a device.
    accept(store, alices("k3", T0 + 5)).await;
    ack_all(store, &desk, T0 + 6).await;
    let cleared = clear(store, &alice, MessageRef::Key("ci:42".into()), T0 + 7).await;
    assert_eq!((cleared.message_id.as_str(), cleared.cleared), ("k3", 1));
    accept(store, alices("k4", T0 + 8)).await;
    let events = stream_of(store, &desk).await;
    let kinds: Vec<(&str, JobKind)> = events
        .iter()
        .map(|e| (e.message_id.as_str(), e.kind))
        .collect();
    assert_eq!(kinds, [("k3", JobKind::Clear), ("k4", JobKind::Message)]);
}

async fn the_first_acknowledgement_wins_and_clears_the_others(store: &Store) {
    let devices = [android("pixel"), extension("desk"), extension("laptop")];
    let (alice, token, [phone, desk, laptop]) = user_with(store, "alice", devices).await;
    let targets = [&phone, &desk, &laptop];
    accept(
        store,
        asking(&token, "q1", &["deploy", "abort"], &targets, T0),
    )
    .await;
    deliver_due(store, T0).await;
    ack_all(store, &desk, T0).await;
    // The laptop acknowledges before its event was acked (a click can beat the ack).
    let outcome = store
        .acknowledge("q1", &laptop.id, Some("deploy".into()), T0 + 5)
        .await
        .unwrap();
    let AckOutcome::Acknowledged { first, cleared } = outcome else {
        panic!("{outcome:?}")
    };
    let want = Acknowledgement {
        at: T0 + 5,
        device_id: laptop.id.clone(),
        response: Some("deploy".into()),
    };
    assert_eq!(first, want);
    let cleared = cleared.expect("the first acknowledgement clears the others");
    assert_eq!((cleared.cancelled, cleared.cleared), (0, 2));
    let got = sorted_ids(&cleared.targets);
    let mut others = [phone.id.as_str(), desk.id.as_str()];
    others.sort();
    assert_eq!(got, others);
    // The laptop's own event is still there to ack; the desk has a clear.
    let laptop_events = stream_of(store, &laptop).await;
    assert_eq!(laptop_events.len(), 1);
    assert_eq!(laptop_events[0].kind, JobKind::Message);
    let desk_events = stream_of(store, &desk).await;
    assert_eq!(desk_events[0].kind, JobKind::Clear);

    // A later acknowledgement, another response: recorded on its own delivery, the answer is
    // still the first, and nothing is cleared again.
    let later = store
        .acknowledge("q1", &desk.id, Some("abort".into()), T0 + 7)
        .await
        .unwrap();
    assert_eq!(
        later,
        AckOutcome::Acknowledged {
            first: want.clone(),
            cleared: None
        }
    );
    // Repeating is not an error, and the device's own first acknowledgement stays.
    let again = store
        .acknowledge("q1", &desk.id, None, T0 + 9)
        .await
        .unwrap();
    assert!(matches!(
        again,
        AckOutcome::Acknowledged { cleared: None, .. }
    ));
    let status = status_of(store, "q1", alice.id).await;
    assert_eq!(status.acknowledged, Some(want));
    assert_eq!(status.cleared_at, None, "an acknowledgement is not a clear");
    let acked: Vec<Option<i64>> = status
        .deliveries
        .iter()
        .map(|d| d.acknowledged_at)
        .collect();
    assert_eq!(acked, [None, Some(T0 + 7), Some(T0 + 5)]);
    // An acknowledgement shows the device was there.
    let seen = store.device(&laptop.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, Some(T0 + 5));
    // A clear after the acknowledgement finds nothing new to clear.
    let cleared = clear(store, &alice, MessageRef::Id("q1".into()), T0 + 10).await;
    // The laptop's event was never acked: it is cancelled, not cleared (SPEC §1.15).
    assert_eq!((cleared.cancelled, cleared.cleared), (1, 0));
}

async fn an_acknowledgement_must_come_from_a_target_with_an_offered_response(store: &Store) {
    let (alice, token, [desk, other]) =
        user_with(store, "alice", [extension("desk"), extension("other")]).await;
    accept(store, asking(&token, "q1", &["yes"], &[&desk], T0)).await;
    accept(store, send(&token, "plain", &[&desk], T0)).await;
    async fn ack(
        store: &Store,
        id: &str,
        device: &DeviceRecord,
        response: Option<&str>,
    ) -> AckOutcome {
        store
            .acknowledge(id, &device.id, response.map(str::to_owned), T0 + 1)
            .await
            .unwrap()
    }
    assert_eq!(ack(store, "q1", &other, None).await, AckOutcome::NotFound);
    assert_eq!(ack(store, "nope", &desk, None).await, AckOutcome::NotFound);
    assert_eq!(
        ack(store, "q1", &desk, Some("no")).await,
        AckOutcome::InvalidResponse
    );
    assert_eq!(
        ack(store, "plain", &desk, Some("yes")).await,
        AckOutcome::InvalidResponse,
        "a message without responses takes none"
    );
    // A refused acknowledgement records nothing.
    let status = status_of(store, "q1", alice.id).await;
    assert_eq!(status.acknowledged, None);
    assert!(matches!(
        ack(store, "plain", &desk, None).await,
        AckOutcome::Acknowledged { .. }
    ));
}

/// Many devices acknowledge at once (on a shared database, as if on several relays): one
/// first, the same for all, and one clear per other device that received it.
async fn concurrent_acknowledgements_have_one_winner(s: Story) {
    let store = &s.store;
    let (alice, token, _) = user_with_token(store, "alice").await;
    let mut desks = Vec::new();
    for i in 0..6 {
        desks.push(device(store, "alice", extension(&format!("desk{i}"))).await);
    }
    let targets: Vec<&DeviceRecord> = desks.iter().collect();
    accept(store, asking(&token, "q1", &["ok"], &targets, T0)).await;
    for desk in &desks {
        ack_all(store, desk, T0).await;
    }
    let second = match s.backend {
        Backend::Sqlite => store.clone(),
        Backend::Postgres => s.open(Limits::HOSTED, T0).await,
    };
    let tasks: Vec<_> = desks
        .iter()
        .enumerate()
        .map(|(i, desk)| {
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            let id = desk.id.clone();
            tokio::spawn(async move {
                store
                    .acknowledge("q1", &id, Some("ok".into()), T0 + 1 + i as i64)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut firsts = Vec::new();
    let mut clears = 0;
    for task in tasks {
        let AckOutcome::Acknowledged { first, cleared } = task.await.unwrap() else {
            panic!("refused")
        };
        firsts.push(first);
        clears += cleared.map_or(0, |c| c.cleared);
    }
    assert!(firsts.windows(2).all(|w| w[0] == w[1]), "{firsts:?}");
    assert_eq!(clears, 5, "every other desk gets one clear");
    let status = status_of(store, "q1", alice.id).await;
    assert_eq!(status.acknowledged.as_ref(), Some(&firsts[0]));
    for desk in &desks {
        let clears = stream_of(store, desk)
            .await
            .into_iter()
            .filter(|e| e.kind == JobKind::Clear)
            .count();
        let winner = desk.id == firsts[0].device_id;
        assert_eq!(clears, usize::from(!winner), "{}", desk.label);
    }
}

/// Review finding: a clear that meets a job a worker holds cancels it for good (the worker's
/// outcome, landing after, changes nothing) and queues the device's clear due when that lease
/// ends, so the clear cannot overtake the message on its way to the device.
async fn a_clear_of_a_job_in_flight_outlives_its_outcome_and_waits_for_its_lease(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "m1", &[&phone], T0)).await;
    let claimed = claim(store, T0, 100, &Channel::ALL).await;
    assert_eq!(claimed.len(), 1);
    let cleared = clear(store, &alice, MessageRef::Id("m1".into()), T0 + 1).await;
    assert_eq!((cleared.cancelled, cleared.cleared), (1, 1));
    // The worker's send went through after all: its outcome lands on nothing.
    complete(store, claimed[0].lease(), JobOutcome::Delivered, T0 + 2).await;
    assert_eq!(delivery_states(store, "m1", alice.id).await, [Cancelled]);
    // The clear is not due while the message's lease could still be in flight …
    assert!(claim(store, T0 + 2, 100, &Channel::ALL).await.is_empty());
    // … and is once it has ended.
    let due = deliver_due(store, T0 + MINUTE).await;
    assert_eq!(
        due.iter()
            .map(|j| (j.device_id.as_str(), j.kind))
            .collect::<Vec<_>>(),
        [(phone.id.as_str(), JobKind::Clear)]
    );
}
