//! Accepting a send and the rate limits around it (SPEC §1.7, §1.8, §1.12): one job per
//! target, sealed payloads kept and the plaintext dropped when nobody reads it in clear,
//! `Idempotency-Key` replays that charge nothing, refusals that name the exhausted layer and
//! write nothing, every layer counted exactly, and monthly and daily counts that survive a
//! restart.

use super::*;
use crate::api::status::DeliveryState;
use crate::store::limits::{Layer, LayerStatus};
use std::net::{IpAddr, Ipv4Addr};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// The limit layers' statuses for a send from [`IP`] with `token` to `receiver` at `now`.
async fn layer_statuses(
    store: &Store,
    token: &TokenRecord,
    receiver: &UserRecord,
    now: i64,
) -> Vec<LayerStatus> {
    store
        .limit_statuses(IP, &token.id, receiver.id, now)
        .await
        .unwrap()
}
const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// Unix seconds, rounded up: how the limits report a reset.
fn secs(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

/// 2026-12-01T00:00:00Z, when November's monthly counts reset.
const DECEMBER: i64 = 1_796_083_200;

story!(
    an_accepted_send_has_one_job_per_target,
    sealed_payloads_are_kept_and_no_plaintext_when_all_are_sealed,
    a_clear_target_without_an_envelope_is_refused,
    the_sending_token_is_touched_only_when_asked,
    an_idempotent_repeat_replays_and_charges_nothing,
    a_refused_send_names_the_layer_and_writes_nothing,
    a_failed_accept_charges_nothing,
    each_send_layer_counts_exactly,
    the_burst_window_rolls,
    monthly_and_daily_counts_survive_reopening,
    ip_layers_charge_together_and_refuse_alone,
    checking_the_ip_layers_charges_nothing,
    statuses_report_every_enabled_layer_and_charge_nothing,
    message_status_shows_each_delivery,
);

/// The response kept for a retry of `token`'s send with idempotency `key` at `now`.
async fn replay(store: &Store, token: &TokenRecord, key: &str, now: i64) -> Option<StoredResponse> {
    store
        .idempotent_response(&token.id, key, now)
        .await
        .unwrap()
}

async fn an_accepted_send_has_one_job_per_target(store: &Store) {
    let devices = [android("pixel"), extension("desk"), webpush("browser")];
    let (alice, token, [phone, desk, browser]) = user_with(store, "alice", devices).await;
    let depth = store.queue_depth().await.unwrap();
    let statuses = accept(store, send(&token, "msg_1", &[&phone, &desk], T0)).await;
    assert!(!statuses.is_empty());
    let status = status_of(store, "msg_1", alice.id).await;
    assert_eq!((status.id.as_str(), status.created_at), ("msg_1", T0));
    let targets: Vec<(&str, &str)> = status
        .deliveries
        .iter()
        .map(|d| (d.device_id.as_str(), d.device_type.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            (phone.id.as_str(), "android"),
            (desk.id.as_str(), "extension")
        ]
    );
    assert_eq!(store.queue_depth().await.unwrap(), depth + 2);
    // A send with no target is kept too (its status says it reached nobody).
    accept(store, send(&token, "msg_none", &[], T0)).await;
    let none = status_of(store, "msg_none", alice.id).await;
    assert!(none.deliveries.is_empty());
    // A webpush target is worked by the Web Push channel only.
    accept(store, send(&token, "msg_web", &[&browser], T0)).await;
    assert!(
        claim(store, T0, 10, &[Channel::Fcm])
            .await
            .iter()
            .all(|j| j.channel == Channel::Fcm)
    );
    let web = claim(store, T0, 10, &[Channel::WebPush]).await;
    assert_eq!(web.len(), 1);
    assert_eq!(
        web[0].target,
        Some(DeliveryTarget::WebPush(subscription("browser")))
    );
}

async fn sealed_payloads_are_kept_and_no_plaintext_when_all_are_sealed(store: &Store) {
    let (_, token, [phone, desk]) =
        user_with(store, "alice", [android("pixel"), extension("desk")]).await;
    let sealed_bytes = vec![7u8; 80];
    let mut all_sealed = send(&token, "msg_sealed", &[&phone, &desk], T0);
    all_sealed.envelope = None;
    for target in &mut all_sealed.targets {
        target.payload = Some(JobPayload {
            kind: PayloadKind::Sealed,
            bytes: sealed_bytes.clone(),
        });
    }
    all_sealed.priority = Priority::High;
    accept(store, all_sealed).await;
    let jobs = claim(store, T0, 10, &Channel::ALL).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        job.envelope, None,
        "no plaintext kept when every target is sealed"
    );
    assert_eq!(
        job.payload,
        Some(JobPayload {
            kind: PayloadKind::Sealed,
            bytes: sealed_bytes.clone()
        })
    );
    assert_eq!(job.priority, Some(Priority::High));
    let events = stream_of(store, &desk).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].envelope, None);
    assert_eq!(events[0].payload.as_ref().unwrap().bytes, sealed_bytes);

    // Mixed: the clear target reads the envelope, the sealed one its own bytes.
    let mut mixed = send(&token, "msg_mixed", &[&phone, &desk], T0 + 1);
    mixed.targets[1].payload = Some(JobPayload {
        kind: PayloadKind::Sealed,
        bytes: vec![9u8; 60],
    });
    accept(store, mixed).await;
    let jobs = claim(store, T0 + 1, 10, &Channel::ALL).await;
    assert_eq!(jobs[0].envelope.as_deref(), Some(ENVELOPE));
    assert_eq!(jobs[0].payload, None);
    let events = stream_of(store, &desk).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].message_id, "msg_mixed");
    assert_eq!(events[1].envelope.as_deref(), Some(ENVELOPE));
    assert_eq!(events[1].payload.as_ref().unwrap().bytes, vec![9u8; 60]);
}

async fn a_clear_target_without_an_envelope_is_refused(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    let before = layer_statuses(store, &token, &alice, T0).await;
    let mut broken = send(&token, "msg_1", &[&phone], T0);
    broken.envelope = None;
    assert!(matches!(
        store.accept_send(broken).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.message_status("msg_1", alice.id).await.unwrap(), None);
    assert_eq!(layer_statuses(store, &token, &alice, T0).await, before);
}

async fn the_sending_token_is_touched_only_when_asked(store: &Store) {
    let (_, token, _) = user_with_token(store, "alice").await;
    accept(store, send(&token, "msg_1", &[], T0 + 1)).await;
    assert_eq!(store.list_tokens(None).await.unwrap()[0].last_used_at, None);
    let mut touching = send(&token, "msg_2", &[], T0 + 2);
    touching.touch_token = true;
    accept(store, touching).await;
    assert_eq!(
        store.list_tokens(None).await.unwrap()[0].last_used_at,
        Some(T0 + 2)
    );
}

async fn an_idempotent_repeat_replays_and_charges_nothing(store: &Store) {
    let (alice, token, _) = user_with_token(store, "alice").await;
    let (other_token, _) = token_of(store, "alice", "other").await;
    let phone = device(store, "alice", android("pixel")).await;
    let first = StoredResponse {
        status: 200,
        body: r#"{"id":"msg_1"}"#.into(),
    };
    let mut original = send(&token, "msg_1", &[&phone], T0);
    original.idempotency = Some(("key-1".into(), first.clone()));
    let charged = accept(store, original.clone()).await;

    // The repeat (another message id, as a new request would mint) replays the first answer.
    let mut repeat = original.clone();
    repeat.message_id = "msg_2".into();
    repeat.created_at = T0 + 1000;
    assert_eq!(
        store.accept_send(repeat).await.unwrap(),
        AcceptOutcome::Replayed(first.clone())
    );
    assert_eq!(store.message_status("msg_2", alice.id).await.unwrap(), None);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    let after = layer_statuses(store, &token, &alice, T0 + 1000).await;
    for l in [Layer::TokenBurst, Layer::TokenMonthly, Layer::ReceiverDaily] {
        assert_eq!(
            layer(&after, l).remaining,
            layer(&charged, l).remaining,
            "{l:?}: a replay charges nothing"
        );
    }
    assert_eq!(
        replay(store, &token, "key-1", T0 + 1000).await,
        Some(first.clone())
    );
    // Keys are per token.
    assert_eq!(replay(store, &other_token, "key-1", T0 + 1000).await, None);
    let mut same_key_other_token = original.clone();
    same_key_other_token.token_id = other_token.id.clone();
    same_key_other_token.message_id = "msg_3".into();
    accept(store, same_key_other_token).await;
    // Honoured for 24 hours, then the key is new again.
    assert_eq!(
        replay(store, &token, "key-1", T0 + DAY - 1).await,
        Some(first.clone())
    );
    assert_eq!(replay(store, &token, "key-1", T0 + DAY).await, None);
    let mut next_day = original;
    next_day.message_id = "msg_4".into();
    next_day.created_at = T0 + DAY;
    next_day.expires_at = T0 + DAY + MINUTE;
    let second = StoredResponse {
        status: 200,
        body: r#"{"id":"msg_4"}"#.into(),
    };
    next_day.idempotency = Some(("key-1".into(), second.clone()));
    accept(store, next_day).await;
    assert_eq!(
        replay(store, &token, "key-1", T0 + DAY + 1).await,
        Some(second)
    );
}

async fn a_refused_send_names_the_layer_and_writes_nothing(s: Story) {
    let store = &s.open(limits(2, 100, 100, 0, 0), T0).await;
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "msg_1", &[&phone], T0)).await;
    accept(store, send(&token, "msg_2", &[&phone], T0 + 500)).await;
    let before = layer_statuses(store, &token, &alice, T0 + 1000).await;
    let mut third = send(&token, "msg_3", &[&phone], T0 + 1000);
    third.idempotency = Some((
        "key-3".into(),
        StoredResponse {
            status: 200,
            body: "{}".into(),
        },
    ));
    third.touch_token = true;
    let refusal = match store.accept_send(third).await.unwrap() {
        AcceptOutcome::Refused(refusal) => refusal,
        other => panic!("the third send in a minute was {other:?}"),
    };
    assert_eq!(
        refusal,
        LayerStatus {
            layer: Layer::TokenBurst,
            limit: 2,
            remaining: 0,
            reset: secs(T0 + MINUTE),
        },
        "refused until the first send leaves the window"
    );
    assert_eq!(refusal.retry_after(T0 + 1000), 59);
    // Nothing written: no message, no job, no key, no touch, no charge.
    assert_eq!(store.message_status("msg_3", alice.id).await.unwrap(), None);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    assert_eq!(replay(store, &token, "key-3", T0 + 1000).await, None);
    assert_eq!(store.list_tokens(None).await.unwrap()[0].last_used_at, None);
    assert_eq!(
        layer_statuses(store, &token, &alice, T0 + 1000).await,
        before
    );
}

/// An accept that fails (here: a message id already taken) must not charge the limits either:
/// the charge and the commit are one.
async fn a_failed_accept_charges_nothing(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "msg_1", &[&phone], T0)).await;
    let before = layer_statuses(store, &token, &alice, T0 + 1).await;
    assert!(
        store
            .accept_send(send(&token, "msg_1", &[&phone], T0 + 1))
            .await
            .is_err()
    );
    assert_eq!(layer_statuses(store, &token, &alice, T0 + 1).await, before);
    assert_eq!(states(store, "msg_1", alice.id).await, ["queued"]);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

async fn each_send_layer_counts_exactly(s: Story) {
    // Monthly: 3 per token.
    let store = &s.open(limits(0, 3, 0, 0, 0), T0).await;
    let (_, token, _) = user_with_token(store, "alice").await;
    for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
        let statuses = accept(store, send(&token, &format!("m{i}"), &[], T0 + i as i64)).await;
        assert_eq!(
            statuses,
            vec![LayerStatus {
                layer: Layer::TokenMonthly,
                limit: 3,
                remaining,
                reset: DECEMBER,
            }]
        );
    }
    match store
        .accept_send(send(&token, "m3", &[], T0 + 10))
        .await
        .unwrap()
    {
        AcceptOutcome::Refused(r) => {
            assert_eq!((r.layer, r.reset), (Layer::TokenMonthly, DECEMBER))
        }
        other => panic!("{other:?}"),
    }
    // A new month starts from zero.
    let december = DECEMBER * 1000;
    let statuses = accept(store, send(&token, "m4", &[], december)).await;
    assert_eq!(layer(&statuses, Layer::TokenMonthly).remaining, 2);

    // Receiver daily: 2 per receiving user, whichever of their tokens sends.
    let store = &s.open(limits(0, 0, 2, 0, 0), T0).await;
    let (bob, bobs_token, _) = user_with_token(store, "bob").await;
    let (bobs_other, _) = token_of(store, "bob", "other").await;
    let (_, carols_token, _) = user_with_token(store, "carol").await;
    let first = accept(store, send(&bobs_token, "r1", &[], T0)).await;
    assert_eq!(
        first,
        vec![LayerStatus {
            layer: Layer::ReceiverDaily,
            limit: 2,
            remaining: 1,
            reset: secs(T0 + DAY),
        }]
    );
    accept(store, send(&bobs_other, "r2", &[], T0 + 1)).await;
    match store
        .accept_send(send(&bobs_token, "r3", &[], T0 + 2))
        .await
        .unwrap()
    {
        AcceptOutcome::Refused(r) => {
            assert_eq!(
                (r.layer, r.remaining, r.reset),
                (Layer::ReceiverDaily, 0, secs(T0 + DAY))
            )
        }
        other => panic!("{other:?}"),
    }
    accept(store, send(&carols_token, "r4", &[], T0 + 3)).await;
    // The day rolls: the first send leaves the window at exactly 24 h.
    accept(store, send(&bobs_token, "r5", &[], T0 + DAY)).await;
    let now = layer_statuses(store, &bobs_token, &bob, T0 + DAY).await;
    assert_eq!(layer(&now, Layer::ReceiverDaily).remaining, 0);
}

async fn the_burst_window_rolls(s: Story) {
    let store = &s.open(limits(3, 0, 0, 0, 0), T0).await;
    let (_, token, _) = user_with_token(store, "alice").await;
    let (other, _) = token_of(store, "alice", "other").await;
    let at = [T0, T0 + 10_000, T0 + 20_000];
    for (i, t) in at.into_iter().enumerate() {
        let statuses = accept(store, send(&token, &format!("b{i}"), &[], t)).await;
        assert_eq!(
            statuses,
            vec![LayerStatus {
                layer: Layer::TokenBurst,
                limit: 3,
                remaining: 2 - i as u64,
                reset: secs(T0 + MINUTE),
            }],
            "the reset is when the oldest send leaves the window"
        );
    }
    let refused = |outcome| match outcome {
        AcceptOutcome::Refused(r) => r,
        other => panic!("{other:?}"),
    };
    let r = refused(
        store
            .accept_send(send(&token, "b3", &[], T0 + MINUTE - 1))
            .await
            .unwrap(),
    );
    assert_eq!((r.layer, r.reset), (Layer::TokenBurst, secs(T0 + MINUTE)));
    // Per token: another token of the same user still has its whole burst.
    accept(store, send(&other, "o1", &[], T0 + MINUTE - 1)).await;
    // Exactly one minute after the first send, one place frees.
    let statuses = accept(store, send(&token, "b4", &[], T0 + MINUTE)).await;
    assert_eq!(
        statuses[0],
        LayerStatus {
            layer: Layer::TokenBurst,
            limit: 3,
            remaining: 0,
            reset: secs(T0 + 10_000 + MINUTE),
        }
    );
    refused(
        store
            .accept_send(send(&token, "b5", &[], T0 + MINUTE + 1))
            .await
            .unwrap(),
    );
}

async fn monthly_and_daily_counts_survive_reopening(s: Story) {
    let l = limits(0, 3, 4, 0, 0);
    let store = s.open(l, T0).await;
    let (alice, token, _) = user_with_token(&store, "alice").await;
    let (other, _) = token_of(&store, "alice", "other").await;
    for i in 0..3 {
        accept(&store, send(&token, &format!("a{i}"), &[], T0 + i)).await;
    }
    // A restart: the monthly count of `token` and the receiver's day come back.
    drop(store);
    let store = s.open(l, T0 + HOUR).await;
    let statuses = layer_statuses(&store, &token, &alice, T0 + HOUR).await;
    assert_eq!(layer(&statuses, Layer::TokenMonthly).remaining, 0);
    let daily = layer(&statuses, Layer::ReceiverDaily);
    assert_eq!((daily.remaining, daily.reset), (1, secs(T0 + DAY)));
    match store
        .accept_send(send(&token, "a3", &[], T0 + HOUR))
        .await
        .unwrap()
    {
        AcceptOutcome::Refused(r) => assert_eq!(r.layer, Layer::TokenMonthly),
        other => panic!("the 4th send of the month after a restart was {other:?}"),
    }
    accept(&store, send(&other, "b0", &[], T0 + HOUR)).await;
    drop(store);
    let store = s.open(l, T0 + 2 * HOUR).await;
    match store
        .accept_send(send(&other, "b1", &[], T0 + 2 * HOUR))
        .await
        .unwrap()
    {
        AcceptOutcome::Refused(r) => assert_eq!(r.layer, Layer::ReceiverDaily),
        other => panic!("the 5th send of the day after a restart was {other:?}"),
    }
    // Reopened a day later, the daily window has emptied; the month has not.
    drop(store);
    let store = s.open(l, T0 + DAY + 10).await;
    let statuses = layer_statuses(&store, &token, &alice, T0 + DAY + 10).await;
    let daily = layer(&statuses, Layer::ReceiverDaily);
    assert_eq!(
        (daily.remaining, daily.reset),
        (3, secs(T0 + HOUR + DAY)),
        "only the send an hour in is still inside the day"
    );
    assert_eq!(layer(&statuses, Layer::TokenMonthly).remaining, 0);
}

async fn ip_layers_charge_together_and_refuse_alone(s: Story) {
    let store = &s.open(limits(0, 0, 0, 2, 3), T0).await;
    let ok = |r: Result<Result<Vec<LayerStatus>, LayerStatus>>| r.unwrap().unwrap();
    let first = ok(store.charge_ip(IP, T0).await);
    assert_eq!(
        first,
        vec![
            LayerStatus {
                layer: Layer::IpMinute,
                limit: 2,
                remaining: 1,
                reset: secs(T0 + MINUTE),
            },
            LayerStatus {
                layer: Layer::IpHour,
                limit: 3,
                remaining: 2,
                reset: secs(T0 + HOUR),
            },
        ]
    );
    ok(store.charge_ip(IP, T0 + 1).await);
    let refused = store.charge_ip(IP, T0 + 2).await.unwrap().unwrap_err();
    assert_eq!(
        (refused.layer, refused.remaining, refused.reset),
        (Layer::IpMinute, 0, secs(T0 + MINUTE))
    );
    // Another address has its own windows.
    ok(store.charge_ip(OTHER_IP, T0 + 2).await);
    // The refusal charged nothing: after the minute, the hour has exactly one place left.
    let third = ok(store.charge_ip(IP, T0 + MINUTE).await);
    assert_eq!(layer(&third, Layer::IpHour).remaining, 0);
    let refused = store
        .charge_ip(IP, T0 + MINUTE + 1)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (refused.layer, refused.reset),
        (Layer::IpHour, secs(T0 + HOUR))
    );
    // Disabled layers are neither checked nor reported.
    let open = &s.open(limits(0, 0, 0, 0, 0), T0).await;
    for i in 0..50 {
        assert!(ok(open.charge_ip(IP, T0 + i).await).is_empty());
    }
}

async fn checking_the_ip_layers_charges_nothing(s: Story) {
    let store = &s.open(limits(0, 0, 0, 2, 3), T0).await;
    let checked = |r: Result<Result<Vec<LayerStatus>, LayerStatus>>| r.unwrap().unwrap();
    for i in 0..10 {
        let statuses = checked(store.check_ip(IP, T0 + i).await);
        let remaining: Vec<(Layer, u64)> =
            statuses.iter().map(|s| (s.layer, s.remaining)).collect();
        assert_eq!(remaining, [(Layer::IpMinute, 2), (Layer::IpHour, 3)]);
    }
    // A check sees the charges (a failed read is charged after its answer).
    store.charge_ip(IP, T0 + 10).await.unwrap().unwrap();
    let after = checked(store.check_ip(IP, T0 + 11).await);
    assert_eq!(layer(&after, Layer::IpMinute).remaining, 1);
    assert_eq!(layer(&after, Layer::IpMinute).reset, secs(T0 + 10 + MINUTE));
    store.charge_ip(IP, T0 + 12).await.unwrap().unwrap();
    let refused = store.check_ip(IP, T0 + 13).await.unwrap().unwrap_err();
    assert_eq!(
        (refused.layer, refused.remaining, refused.reset),
        (Layer::IpMinute, 0, secs(T0 + 10 + MINUTE))
    );
    // Another address is untouched; after the minute the hour still has one place.
    checked(store.check_ip(OTHER_IP, T0 + 13).await);
    let later = checked(store.check_ip(IP, T0 + 12 + MINUTE).await);
    assert_eq!(layer(&later, Layer::IpHour).remaining, 1);
    // Disabled layers are neither checked nor reported.
    let open = &s.open(limits(0, 0, 0, 0, 0), T0).await;
    assert!(checked(open.check_ip(IP, T0).await).is_empty());
}

async fn statuses_report_every_enabled_layer_and_charge_nothing(s: Story) {
    let store = &s.open(limits(5, 50, 500, 10, 100), T0).await;
    let (alice, token, _) = user_with_token(store, "alice").await;
    let fresh = layer_statuses(store, &token, &alice, T0).await;
    let shape: Vec<(Layer, u64, u64)> = fresh
        .iter()
        .map(|s| (s.layer, s.limit, s.remaining))
        .collect();
    assert_eq!(
        shape,
        [
            (Layer::TokenBurst, 5, 5),
            (Layer::TokenMonthly, 50, 50),
            (Layer::ReceiverDaily, 500, 500),
            (Layer::IpMinute, 10, 10),
            (Layer::IpHour, 100, 100),
        ]
    );
    assert_eq!(layer(&fresh, Layer::TokenMonthly).reset, DECEMBER);
    // Looking charges nothing.
    assert_eq!(layer_statuses(store, &token, &alice, T0).await, fresh);
    store.charge_ip(IP, T0).await.unwrap().unwrap();
    accept(store, send(&token, "msg_1", &[], T0)).await;
    let after = layer_statuses(store, &token, &alice, T0 + 1).await;
    let remaining: Vec<u64> = after.iter().map(|s| s.remaining).collect();
    assert_eq!(remaining, [4, 49, 499, 9, 99]);
    assert_eq!(layer(&after, Layer::TokenBurst).reset, secs(T0 + MINUTE));
    // Sweeping forgets nothing still inside a window.
    store.sweep_limits(T0 + 1).await.unwrap();
    assert_eq!(layer_statuses(store, &token, &alice, T0 + 1).await, after);
    // Disabled layers are absent.
    let partial = &s.open(limits(5, 0, 500, 0, 100), T0).await;
    let layers: Vec<Layer> = partial
        .limit_statuses(IP, &token.id, alice.id, T0)
        .await
        .unwrap()
        .iter()
        .map(|s| s.layer)
        .collect();
    assert_eq!(
        layers,
        [Layer::TokenBurst, Layer::ReceiverDaily, Layer::IpHour]
    );
}

async fn message_status_shows_each_delivery(store: &Store) {
    let (alice, token, [phone, desk]) =
        user_with(store, "alice", [android("pixel"), extension("desk")]).await;
    let (bob, _, _) = user_with_token(store, "bob").await;
    accept(store, send(&token, "msg_1", &[&phone, &desk], T0)).await;
    let status = status_of(store, "msg_1", alice.id).await;
    assert_eq!(
        status.deliveries,
        vec![
            Delivery {
                device_id: phone.id.clone(),
                label: Some("pixel".into()),
                device_type: DeviceType::Android,
                state: DeliveryState::Queued,
                attempts: 0,
                last_error: None,
                next_attempt_at: Some(T0),
                acknowledged_at: None,
            },
            Delivery {
                device_id: desk.id.clone(),
                label: Some("desk".into()),
                device_type: DeviceType::Extension,
                state: DeliveryState::Queued,
                attempts: 0,
                last_error: None,
                next_attempt_at: None,
                acknowledged_at: None,
            },
        ]
    );
    // Only the owner sees it; an unknown id is nobody's.
    assert_eq!(store.message_status("msg_1", bob.id).await.unwrap(), None);
    assert_eq!(store.message_status("msg_x", alice.id).await.unwrap(), None);
    // A leased delivery still shows as queued, with no next attempt time.
    claim(store, T0, 10, &Channel::ALL).await;
    let leased = &status_of(store, "msg_1", alice.id).await.deliveries[0];
    assert_eq!(
        (
            leased.state.as_str(),
            leased.attempts,
            leased.next_attempt_at
        ),
        ("queued", 1, None)
    );
    // A removed device's delivery stays, without a label to show.
    store.remove_device(&desk.id, T0 + 1).await.unwrap();
    let after = status_of(store, "msg_1", alice.id).await;
    assert_eq!(after.deliveries[1].device_id, desk.id);
    assert_eq!(after.deliveries[1].label, None);
    assert_eq!(after.deliveries[0].label.as_deref(), Some("pixel"));
}
