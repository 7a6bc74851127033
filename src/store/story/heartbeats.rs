//! Heartbeats (SPEC §1.18): a deadline kept in the store, claimed once when it passes with
//! its late notification in the same commit — never twice, not by two relays on one database
//! — and a ping that finds the heartbeat late or failed commits "is back" with it. The
//! notifications replace each other by key and are charged to no limit.

use super::*;
use crate::store::heartbeats::*;
use crate::store::limits::Layer;
use crate::validate::heartbeat::PingSettings;
use std::net::{IpAddr, Ipv4Addr};

story!(
    a_late_heartbeat_is_claimed_exactly_once_with_its_notification,
    a_ping_after_late_commits_back_which_replaces_the_alarm,
    a_failure_is_sent_at_once_and_the_next_ping_recovers,
    a_deleted_heartbeat_is_never_due,
    two_stores_claim_a_due_heartbeat_once_in_total,
    the_first_ping_needs_every_and_later_ones_keep_it,
);

const NAME: &str = "backup";

fn ping(token: &TokenRecord, every: Option<i64>, now: i64) -> Ping {
    Ping {
        user_id: token.user_id,
        name: NAME.into(),
        settings: PingSettings {
            every_ms: every,
            grace_ms: None,
        },
        token_id: token.id.clone(),
        source: token.label.clone(),
        now,
    }
}

/// A notification of the heartbeat: key `hb:backup`.
fn note(token: &TokenRecord, id: &str, targets: &[&DeviceRecord], now: i64) -> NewSend {
    NewSend {
        key: Some(format!("hb:{NAME}")),
        ..send(token, id, targets, now)
    }
}

async fn pinged(
    store: &Store,
    ping: Ping,
    back: Option<NewSend>,
) -> (HeartbeatRecord, Option<HeartbeatState>) {
    match store.ping_heartbeat(ping, back).await.unwrap() {
        PingOutcome::Pinged { heartbeat, was } => (heartbeat, was),
        other => panic!("not pinged: {other:?}"),
    }
}

async fn state(store: &Store, user_id: i64) -> HeartbeatState {
    store.heartbeat(user_id, NAME).await.unwrap().unwrap().state
}

async fn a_late_heartbeat_is_claimed_exactly_once_with_its_notification(store: &Store) {
    let (alice, token, [desk]) = user_with(store, "alice", [extension("desk")]).await;
    let (hb, was) = pinged(store, ping(&token, Some(10 * MINUTE), T0), None).await;
    assert_eq!((hb.state, was), (HeartbeatState::Up, None));
    // Every 10 minutes, a default grace of 1 minute: due at T0 + 11 min, not before.
    assert_eq!(hb.alarm_at(), T0 + 11 * MINUTE);
    assert!(
        store
            .due_heartbeats(T0 + 11 * MINUTE - 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_heartbeats(T0 + 11 * MINUTE, 10).await.unwrap();
    assert_eq!(due, vec![hb.clone()]);
    let at = T0 + 11 * MINUTE;
    assert!(
        store
            .claim_late_heartbeat(due[0].clone(), note(&token, "late1", &[&desk], at))
            .await
            .unwrap()
    );
    // A second claim of the same deadline (a second beat, a restart) writes nothing.
    assert!(
        !store
            .claim_late_heartbeat(due[0].clone(), note(&token, "late2", &[&desk], at))
            .await
            .unwrap()
    );
    assert!(
        store
            .message_status("late2", alice.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.due_heartbeats(at + DAY, 10).await.unwrap().is_empty());
    assert_eq!(state(store, alice.id).await, HeartbeatState::Late);
    let status = status_of(store, "late1", alice.id).await;
    assert_eq!(status.key.as_deref(), Some("hb:backup"));
    assert_eq!(status.deliveries.len(), 1);
    let events = stream_of(store, &desk).await;
    assert_eq!(events.len(), 1);
    // The relay's own notification is charged to no limit.
    let statuses = store
        .limit_statuses(IpAddr::V4(Ipv4Addr::LOCALHOST), &token.id, alice.id, at)
        .await
        .unwrap();
    for l in [Layer::TokenBurst, Layer::TokenMonthly, Layer::ReceiverDaily] {
        let status = layer(&statuses, l);
        assert_eq!(status.remaining, status.limit, "{l:?}");
    }
}

async fn a_ping_after_late_commits_back_which_replaces_the_alarm(store: &Store) {
    let (alice, token, [desk]) = user_with(store, "alice", [extension("desk")]).await;
    let (hb, _) = pinged(store, ping(&token, Some(10 * MINUTE), T0), None).await;
    let at = hb.alarm_at();
    assert!(
        store
            .claim_late_heartbeat(hb, note(&token, "late", &[&desk], at))
            .await
            .unwrap()
    );
    // Without its "is back" the ping writes nothing.
    let again = ping(&token, None, at + MINUTE);
    match store.ping_heartbeat(again.clone(), None).await.unwrap() {
        PingOutcome::NeedsBack(hb) => assert_eq!(hb.state, HeartbeatState::Late),
        other => panic!("{other:?}"),
    }
    assert_eq!(state(store, alice.id).await, HeartbeatState::Late);
    let (hb, was) = pinged(
        store,
        again,
        Some(note(&token, "back", &[&desk], at + MINUTE)),
    )
    .await;
    assert_eq!(
        (hb.state, was),
        (HeartbeatState::Up, Some(HeartbeatState::Late))
    );
    assert_eq!(hb.last_ping_at, at + MINUTE);
    // "is back" has the same key: the alarm's pending event is superseded by it.
    assert_eq!(states(store, "late", alice.id).await, ["superseded"]);
    assert_eq!(states(store, "back", alice.id).await, ["queued"]);
    // Up again, a ping sends nothing (any send offered is not written).
    let (_, was) = pinged(
        store,
        ping(&token, None, at + 2 * MINUTE),
        Some(note(&token, "extra", &[&desk], at)),
    )
    .await;
    assert_eq!(was, Some(HeartbeatState::Up));
    assert!(
        store
            .message_status("extra", alice.id)
            .await
            .unwrap()
            .is_none()
    );
    // And the next deadline counts from the latest ping.
    assert_eq!(
        store.due_heartbeats(at + 13 * MINUTE, 10).await.unwrap()[0].last_ping_at,
        at + 2 * MINUTE
    );
}

async fn a_failure_is_sent_at_once_and_the_next_ping_recovers(store: &Store) {
    let (alice, token, _) = user_with_token(store, "alice").await;
    let (cron, _) = token_of(store, "alice", "cron").await;
    let phone = device(store, "alice", android("pixel")).await;
    let unknown = store
        .fail_heartbeat(
            alice.id,
            NAME,
            &token.id,
            &token.label,
            note(&token, "f0", &[&phone], T0),
        )
        .await
        .unwrap();
    assert!(unknown.is_none());
    assert!(
        store
            .message_status("f0", alice.id)
            .await
            .unwrap()
            .is_none()
    );
    pinged(store, ping(&token, Some(HOUR), T0), None).await;
    let failed = store
        .fail_heartbeat(
            alice.id,
            NAME,
            &cron.id,
            &cron.label,
            note(&cron, "f1", &[&phone], T0 + 1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, HeartbeatState::Failed);
    assert_eq!(
        (failed.token_id.as_str(), failed.source.as_str()),
        (cron.id.as_str(), "cron")
    );
    assert_eq!(states(store, "f1", alice.id).await, ["queued"]);
    // A failed heartbeat is not late as well.
    assert!(store.due_heartbeats(T0 + DAY, 10).await.unwrap().is_empty());
    assert!(matches!(
        store
            .ping_heartbeat(ping(&token, None, T0 + 2), None)
            .await
            .unwrap(),
        PingOutcome::NeedsBack(_)
    ));
    let (hb, was) = pinged(
        store,
        ping(&token, None, T0 + 2),
        Some(note(&token, "b", &[&phone], T0 + 2)),
    )
    .await;
    assert_eq!(
        (hb.state, was),
        (HeartbeatState::Up, Some(HeartbeatState::Failed))
    );
    assert_eq!(states(store, "f1", alice.id).await, ["superseded"]);
}

async fn a_deleted_heartbeat_is_never_due(store: &Store) {
    let (alice, token, _) = user_with_token(store, "alice").await;
    let (bob, _, _) = user_with_token(store, "bob").await;
    let (hb, _) = pinged(store, ping(&token, Some(10 * MINUTE), T0), None).await;
    // Another owner's heartbeat of the same name is another heartbeat.
    assert!(!store.delete_heartbeat(bob.id, NAME).await.unwrap());
    assert_eq!(store.heartbeats_of(alice.id).await.unwrap().len(), 1);
    assert!(store.heartbeats_of(bob.id).await.unwrap().is_empty());
    assert!(store.delete_heartbeat(alice.id, NAME).await.unwrap());
    assert!(!store.delete_heartbeat(alice.id, NAME).await.unwrap());
    assert!(store.due_heartbeats(T0 + DAY, 10).await.unwrap().is_empty());
    // A claim read before the delete finds nothing to claim.
    assert!(
        !store
            .claim_late_heartbeat(hb, note(&token, "late", &[], T0 + DAY))
            .await
            .unwrap()
    );
    assert!(
        store
            .message_status("late", alice.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.heartbeat(alice.id, NAME).await.unwrap().is_none());
}

async fn two_stores_claim_a_due_heartbeat_once_in_total(s: Story) {
    let (alice, token, _) = user_with_token(&s.store, "alice").await;
    let desk = device(&s.store, "alice", extension("desk")).await;
    let other = s.open(Limits::HOSTED, T0).await;
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("job{i}");
        let p = Ping {
            name: name.clone(),
            ..ping(&token, Some(MINUTE), T0)
        };
        pinged(&s.store, p, None).await;
        names.push(name);
    }
    let at = T0 + 2 * MINUTE;
    // Both relays find the same due heartbeats and race to claim each one.
    let due_a = s.store.due_heartbeats(at, 100).await.unwrap();
    let due_b = other.due_heartbeats(at, 100).await.unwrap();
    assert_eq!((due_a.len(), due_b.len()), (20, 20));
    let claims = |store: Store, due: Vec<HeartbeatRecord>, tag: &'static str| {
        let (token, desk) = (token.clone(), desk.clone());
        tokio::spawn(async move {
            let mut won = 0;
            for hb in due {
                let id = format!("{tag}-{}", hb.name);
                // Each heartbeat's own key, so no alarm replaces another's.
                let send = NewSend {
                    key: Some(format!("hb:{}", hb.name)),
                    ..send(&token, &id, &[&desk], at)
                };
                if store.claim_late_heartbeat(hb, send).await.unwrap() {
                    won += 1;
                }
            }
            won
        })
    };
    let a = claims(s.store.clone(), due_a, "a");
    let b = claims(other.clone(), due_b, "b");
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a + b, 20, "a claimed {a}, b {b}");
    for name in &names {
        let sent = [format!("a-{name}"), format!("b-{name}")];
        let mut found = 0;
        for id in &sent {
            found += usize::from(
                s.store
                    .message_status(id, alice.id)
                    .await
                    .unwrap()
                    .is_some(),
            );
        }
        assert_eq!(found, 1, "{name}");
    }
    assert_eq!(
        s.store.stream_events(&desk.id, 0, 100).await.unwrap().len(),
        20
    );
}

async fn the_first_ping_needs_every_and_later_ones_keep_it(store: &Store) {
    let (alice, token, _) = user_with_token(store, "alice").await;
    assert_eq!(
        store
            .ping_heartbeat(ping(&token, None, T0), None)
            .await
            .unwrap(),
        PingOutcome::Refused(PingRefusal::NeedsEvery)
    );
    assert!(store.heartbeat(alice.id, NAME).await.unwrap().is_none());
    pinged(store, ping(&token, Some(DAY), T0), None).await;
    let (hb, _) = pinged(store, ping(&token, None, T0 + HOUR), None).await;
    assert_eq!((hb.every_ms, hb.grace_ms, hb.grace_set), (DAY, HOUR, false));
    assert_eq!(store.heartbeats_of(alice.id).await.unwrap(), vec![hb]);
}
