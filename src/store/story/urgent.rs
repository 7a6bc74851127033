//! Urgent messages (SPEC §1.17): repeats are jobs the maintenance round queues every `retry`
//! for each device that has the message, until an acknowledgement, a clear or `expire`; each
//! due round is taken once, however many relays (stores on one database) run it.

use super::*;

story!(
    an_urgent_message_repeats_on_every_channel_until_acknowledged,
    repeats_stop_at_expire_and_on_a_clear,
    an_offline_device_keeps_one_repeat,
    two_relays_take_each_repeat_once,
    a_callback_falls_due_once_and_one_relay_claims_it,
);

const RETRY: i64 = 30_000;

/// A send of `id` to `targets` repeating every 30 s for `expire_ms`, live an hour.
fn urgent(token: &TokenRecord, id: &str, targets: &[&DeviceRecord], expire_ms: i64) -> NewSend {
    NewSend {
        priority: Priority::Urgent,
        expires_at: T0 + HOUR,
        urgency: Some(Urgency {
            repeat: Some(RepeatPlan {
                retry_ms: RETRY,
                expire_ms,
            }),
            callback: None,
            receipt: None,
        }),
        ..send(token, id, targets, T0)
    }
}

fn kinds_of(jobs: &[ClaimedJob]) -> Vec<(String, JobKind)> {
    let mut kinds: Vec<_> = jobs.iter().map(|j| (j.device_id.clone(), j.kind)).collect();
    kinds.sort();
    kinds
}

async fn repeats(store: &Store, id: &str, user_id: i64) -> i64 {
    let status = status_of(store, id, user_id).await;
    status.repeat.expect("a repeat status").repeats
}

/// The devices a round of repeats at `now` reached.
async fn repeated(store: &Store, now: i64) -> Vec<Target> {
    store.schedule_repeats(now).await.unwrap().targets
}

/// The callbacks one relay claims at `now`.
async fn callbacks_due(store: &Store, now: i64) -> Vec<CallbackJob> {
    store.claim_callbacks(now, 10, MINUTE).await.unwrap()
}

async fn an_urgent_message_repeats_on_every_channel_until_acknowledged(store: &Store) {
    let devices = [extension("desk"), android("pixel"), webpush("firefox")];
    let (alice, token, [desk, phone, browser]) = user_with(store, "alice", devices).await;
    accept(
        store,
        urgent(&token, "m1", &[&desk, &phone, &browser], 10 * MINUTE),
    )
    .await;
    let status = status_of(store, "m1", alice.id).await;
    assert_eq!(
        status.repeat,
        Some(RepeatStatus {
            retry_ms: RETRY,
            expire_ms: 10 * MINUTE,
            expires_at: T0 + 10 * MINUTE,
            repeats: 0
        })
    );
    assert_eq!(status.callback, None);
    assert_eq!(deliver_due(store, T0).await.len(), 2);
    assert_eq!(ack_all(store, &desk, T0).await.len(), 1);

    // Not due before `retry`.
    let early = store.schedule_repeats(T0 + RETRY - 1).await.unwrap();
    assert!(early.targets.is_empty(), "{early:?}");
    // Due: one repeat per device, and taken once.
    let round = store.schedule_repeats(T0 + RETRY).await.unwrap();
    assert_eq!(round.targets.len(), 3, "{round:?}");
    assert!(repeated(store, T0 + RETRY).await.is_empty());
    let pushed = deliver_due(store, T0 + RETRY).await;
    let mut expected = vec![
        (phone.id.clone(), JobKind::Repeat),
        (browser.id.clone(), JobKind::Repeat),
    ];
    expected.sort();
    assert_eq!(kinds_of(&pushed), expected);
    // The repeat carries the message's own content, and its key-less FCM collapse is its id.
    assert!(pushed.iter().all(|j| j.message_id == "m1"));
    let web = pushed.iter().find(|j| j.device_id == browser.id).unwrap();
    assert!(web.payload.is_some() || web.envelope.is_some());
    let events = ack_all(store, &desk, T0 + RETRY).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].message_id.as_str()),
        (JobKind::Repeat, "m1")
    );
    assert!(events[0].envelope.is_some());
    assert_eq!(repeats(store, "m1", alice.id).await, 1);
    // The status still shows one delivery per device.
    assert_eq!(states(store, "m1", alice.id).await.len(), 3);

    // The next round comes `retry` after the last one.
    assert_eq!(repeated(store, T0 + 2 * RETRY).await.len(), 3);
    assert_eq!(repeats(store, "m1", alice.id).await, 2);
    // The phone's person acknowledges before those repeats went out: they are cancelled, and
    // no further round comes.
    let acked = store
        .acknowledge("m1", &phone.id, None, T0 + 2 * RETRY + 1)
        .await
        .unwrap();
    assert!(matches!(acked, AckOutcome::Acknowledged { .. }));
    assert!(
        deliver_due(store, T0 + 2 * RETRY + 2)
            .await
            .iter()
            .all(|j| j.kind == JobKind::Clear)
    );
    let desk_events = ack_all(store, &desk, T0 + 2 * RETRY + 2).await;
    assert!(
        desk_events.iter().all(|e| e.kind == JobKind::Clear),
        "{desk_events:?}"
    );
    for later in [3, 4, 10] {
        assert!(repeated(store, T0 + later * RETRY).await.is_empty());
    }
    assert_eq!(repeats(store, "m1", alice.id).await, 2);
}

async fn repeats_stop_at_expire_and_on_a_clear(store: &Store) {
    let (alice, token, [desk]) = user_with(store, "alice", [extension("desk")]).await;
    accept(store, urgent(&token, "m1", &[&desk], MINUTE)).await;
    accept(
        store,
        NewSend {
            message_id: "m2".into(),
            ..urgent(&token, "m1", &[&desk], 10 * MINUTE)
        },
    )
    .await;
    ack_all(store, &desk, T0).await;
    assert_eq!(repeated(store, T0 + RETRY).await.len(), 2);
    ack_all(store, &desk, T0 + RETRY).await;
    clear(store, &alice, MessageRef::Id("m2".into()), T0 + RETRY + 1).await;
    // m1's expire (60 s) ends its repeats at 60 s; m2 was cleared.
    let round = store.schedule_repeats(T0 + 2 * RETRY).await.unwrap();
    assert!(round.targets.is_empty(), "{round:?}");
    assert_eq!(round.expired, 1);
    assert!(repeated(store, T0 + 3 * RETRY).await.is_empty());
    assert_eq!(repeats(store, "m1", alice.id).await, 1);
    assert_eq!(repeats(store, "m2", alice.id).await, 1);
    // A repeat still waiting when `expire` passes expires with it.
    accept(
        store,
        NewSend {
            message_id: "m3".into(),
            ..urgent(&token, "m3", &[&desk], MINUTE)
        },
    )
    .await;
    ack_all(store, &desk, T0).await;
    store.schedule_repeats(T0 + RETRY).await.unwrap();
    store.expire_jobs(T0 + MINUTE).await.unwrap();
    let left = store.stream_events(&desk.id, 0, 100).await.unwrap();
    assert!(
        left.iter().all(|e| e.message_id != "m3"),
        "an expired repeat is not streamed: {left:?}"
    );
}

async fn an_offline_device_keeps_one_repeat(store: &Store) {
    let (alice, token, [desk, phone]) =
        user_with(store, "alice", [extension("desk"), android("pixel")]).await;
    accept(store, urgent(&token, "m1", &[&desk, &phone], 10 * MINUTE)).await;
    deliver_due(store, T0).await;
    // The desk never reads its stream: its first delivery is still pending, and each round's
    // repeat replaces the one before, so it finds the message and one repeat.
    for round in 1..=5 {
        store.schedule_repeats(T0 + round * RETRY).await.unwrap();
    }
    let events = store.stream_events(&desk.id, 0, 100).await.unwrap();
    let kinds: Vec<JobKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [JobKind::Message, JobKind::Repeat]);
    assert_eq!(repeats(store, "m1", alice.id).await, 5);
    // An FCM device that is offline has one repeat waiting too.
    let waiting = claim(store, T0 + 6 * RETRY, 100, &Channel::ALL).await;
    assert_eq!(kinds_of(&waiting), [(phone.id.clone(), JobKind::Repeat)]);
}

async fn two_relays_take_each_repeat_once(s: Story) {
    let (alice, token, _) = user_with_token(&s.store, "alice").await;
    let desk = device(&s.store, "alice", extension("desk")).await;
    let phone = device(&s.store, "alice", android("pixel")).await;
    for id in ["m1", "m2", "m3"] {
        accept(
            &s.store,
            NewSend {
                message_id: id.into(),
                ..urgent(&token, id, &[&desk, &phone], 10 * MINUTE)
            },
        )
        .await;
    }
    deliver_due(&s.store, T0).await;
    ack_all(&s.store, &desk, T0).await;
    // A second store on the same database (SQLite: admin beside the relay; PostgreSQL: a
    // second relay), both running the round at once, every round.
    let other = s.open(Limits::HOSTED, T0).await;
    for round in 1..=4 {
        let now = T0 + round * RETRY;
        let (a, b) = tokio::join!(s.store.schedule_repeats(now), other.schedule_repeats(now));
        let total = a.unwrap().targets.len() + b.unwrap().targets.len();
        assert_eq!(
            total, 6,
            "round {round}: one repeat per device of each message"
        );
    }
    for id in ["m1", "m2", "m3"] {
        assert_eq!(repeats(&s.store, id, alice.id).await, 4);
    }
}

async fn a_callback_falls_due_once_and_one_relay_claims_it(s: Story) {
    let (alice, token, _) = user_with_token(&s.store, "alice").await;
    let desk = device(&s.store, "alice", extension("desk")).await;
    let with_callback = |id: &str, expire_ms| {
        let mut send = NewSend {
            message_id: id.into(),
            ..urgent(&token, id, &[&desk], expire_ms)
        };
        send.urgency.as_mut().unwrap().callback = Some(format!("https://hooks.example/{id}"));
        send
    };
    accept(&s.store, with_callback("m1", 10 * MINUTE)).await;
    accept(&s.store, with_callback("m2", MINUTE)).await;
    let other = s.open(Limits::HOSTED, T0).await;
    // Nothing is due before an acknowledgement or the expiry.
    assert!(callbacks_due(&s.store, T0).await.is_empty());
    s.store
        .acknowledge("m1", &desk.id, None, T0 + 1)
        .await
        .unwrap();
    // m2 expires unanswered; the round that sees it makes its callback due.
    s.store.schedule_repeats(T0 + MINUTE).await.unwrap();
    let now = T0 + MINUTE;
    let (a, b) = tokio::join!(
        s.store.claim_callbacks(now, 10, MINUTE),
        other.claim_callbacks(now, 10, MINUTE)
    );
    let mut claimed: Vec<CallbackJob> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    claimed.sort_by(|x, y| x.message_id.cmp(&y.message_id));
    let kinds: Vec<(&str, &str)> = claimed
        .iter()
        .map(|j| (j.message_id.as_str(), j.kind.as_str()))
        .collect();
    assert_eq!(kinds, [("m1", "acknowledged"), ("m2", "expired")]);
    assert_eq!(claimed[0].acknowledged.as_ref().unwrap().device_id, desk.id);
    assert!(claimed[1].acknowledged.is_none());
    // The key is the SHA-256 of the sending token (what the store keeps of it).
    assert_eq!(claimed[0].key.len(), 32);
    assert_eq!(claimed[0].url, "https://hooks.example/m1");
    // Leased: not claimable again until the lease passes or an outcome lands.
    assert!(callbacks_due(&s.store, now).await.is_empty());
    s.store
        .complete_callback("m1", CallbackOutcome::Delivered, now)
        .await
        .unwrap();
    s.store
        .complete_callback("m2", CallbackOutcome::RetryAt(now + MINUTE), now)
        .await
        .unwrap();
    let status = status_of(&s.store, "m1", alice.id).await;
    assert_eq!(
        status.callback,
        Some(CallbackStatus {
            state: CallbackState::Delivered,
            at: Some(now)
        })
    );
    assert!(
        s.store
            .claim_callbacks(now + MINUTE - 1, 10, MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    let retry = s
        .store
        .claim_callbacks(now + MINUTE, 10, MINUTE)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].message_id.as_str(), retry[0].attempts), ("m2", 2));
    s.store
        .complete_callback("m2", CallbackOutcome::Failed, now + MINUTE)
        .await
        .unwrap();
    let status = status_of(&s.store, "m2", alice.id).await;
    assert_eq!(status.callback.unwrap().state, CallbackState::Failed);
    // A later acknowledgement or round makes nothing due again.
    s.store.schedule_repeats(now + 2 * MINUTE).await.unwrap();
    assert!(
        s.store
            .claim_callbacks(now + DAY, 10, MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
}
