//! Store behaviour on real SQLite files in temp dirs.

use super::*;
use crate::api::{DeviceType, Priority};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn token_for(store: &Store, user: &str) -> (TokenRecord, crate::api::token::Secret) {
    store
        .create_token(
            NewToken {
                user: user.into(),
                label: "ci".into(),
                priority_cap: Some(Priority::High),
                scope_devices: None,
                test: false,
            },
            1,
        )
        .unwrap()
}

fn android(label: &str) -> NewDevice {
    NewDevice {
        label: label.into(),
        device_type: DeviceType::Android,
        fcm_token: Some(format!("fcm-{label}")),
        public_key: None,
        webpush: None,
    }
}

fn send_to(
    user_id: i64,
    token_id: &str,
    id: &str,
    targets: Vec<(String, DeviceType)>,
    now: i64,
) -> NewSend {
    NewSend {
        message_id: id.into(),
        user_id,
        token_id: token_id.into(),
        envelope: Some(r#"{"type":"notification","payload":{"message":"m"},"source":"ci"}"#.into()),
        targets: targets
            .into_iter()
            .map(|(id, kind)| Target::clear(id, kind))
            .collect(),
        priority: Priority::Default,
        created_at: now,
        expires_at: now + 60_000,
        month: "2026-11".into(),
        idempotency: None,
        touch_token: true,
    }
}

#[test]
fn users_are_unique_and_removable() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    assert!(matches!(
        store.add_user("alice", 2),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_users().unwrap().len(), 1);
    store.remove_user("alice").unwrap();
    assert!(matches!(
        store.remove_user("alice"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn tokens_authenticate_until_revoked_and_only_hashes_are_stored() {
    let (dir, store) = store();
    store.add_user("alice", 1).unwrap();
    let (record, secret) = token_for(&store, "alice");
    let found = store.authenticate_token(secret.expose()).unwrap().unwrap();
    assert_eq!(found.id, record.id);
    assert_eq!(found.priority_cap, Some(Priority::High));
    assert!(
        store
            .authenticate_token("rfk_live_00000000000000000000000000000000")
            .unwrap()
            .is_none()
    );
    store.revoke_token(&record.id, 5).unwrap();
    assert!(store.authenticate_token(secret.expose()).unwrap().is_none());
    assert!(store.list_tokens(Some("alice")).unwrap()[0].revoked);
    // The database file never holds the token itself.
    drop(store);
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default();
    let needle = secret.expose().as_bytes();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    assert!(!wal.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn pairing_codes_are_single_use_and_expire() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    let code = store.create_pair_code("alice", 1_000).unwrap();
    assert_eq!(code.len(), 6);
    let paired = block_on(store.redeem_pair_code(&code, android("pixel"), 2_000)).unwrap();
    assert_eq!(paired.device.user, "alice");
    assert!(paired.credential.is_none());
    assert!(block_on(store.redeem_pair_code(&code, android("again"), 2_001)).is_err());
    let late = store.create_pair_code("alice", 1_000).unwrap();
    assert!(
        block_on(store.redeem_pair_code(&late, android("late"), 1_000 + 10 * 60 * 1000)).is_err()
    );
    let ext = store.create_pair_code("alice", 3_000).unwrap();
    let desk = block_on(store.redeem_pair_code(
        &ext,
        NewDevice {
            label: "laptop".into(),
            device_type: DeviceType::Extension,
            fcm_token: None,
            public_key: None,
            webpush: None,
        },
        3_001,
    ))
    .unwrap();
    let credential = desk.credential.unwrap();
    assert_eq!(
        store
            .authenticate_device(credential.expose())
            .unwrap()
            .unwrap()
            .id,
        desk.device.id
    );
}

#[test]
fn accepted_sends_are_visible_with_their_deliveries_and_counters() {
    let (_d, store) = store();
    let alice = store.add_user("alice", 1).unwrap();
    let (token, _) = token_for(&store, "alice");
    let phone = store
        .add_device("alice", android("pixel"), 1)
        .unwrap()
        .device;
    let targets = vec![(phone.id.clone(), DeviceType::Android)];
    let outcome =
        block_on(store.accept_send(send_to(alice.id, &token.id, "msg_1", targets, 10_000)))
            .unwrap();
    assert_eq!(outcome, AcceptOutcome::Accepted);
    let status = store.message_status("msg_1", alice.id).unwrap().unwrap();
    assert_eq!(status.deliveries.len(), 1);
    assert_eq!(status.deliveries[0].state, "queued");
    assert_eq!(status.deliveries[0].next_attempt_at, Some(10_000));
    assert!(
        store
            .message_status("msg_1", alice.id + 1)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.month_counts("2026-11").unwrap(),
        vec![(token.id.clone(), 1)]
    );
    assert_eq!(
        store.receiver_sends_since(0).unwrap(),
        vec![(alice.id, 10_000)]
    );
    assert!(store.list_tokens(None).unwrap()[0].last_used_at.is_some());
}

#[test]
fn idempotent_replay_returns_the_first_response() {
    let (_d, store) = store();
    let alice = store.add_user("alice", 1).unwrap();
    let (token, _) = token_for(&store, "alice");
    let first = StoredResponse {
        status: 200,
        body: "{\"id\":\"msg_1\"}".into(),
    };
    let mut send = send_to(alice.id, &token.id, "msg_1", vec![], 10_000);
    send.idempotency = Some(("key-1".into(), first.clone()));
    assert_eq!(
        block_on(store.accept_send(send.clone())).unwrap(),
        AcceptOutcome::Accepted
    );
    send.message_id = "msg_2".into();
    assert_eq!(
        block_on(store.accept_send(send)).unwrap(),
        AcceptOutcome::Replayed(first.clone())
    );
    assert_eq!(
        store
            .idempotent_response(&token.id, "key-1", 20_000)
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .idempotent_response(&token.id, "key-1", 10_000 + 24 * 3600 * 1000)
            .unwrap(),
        None
    );
    assert_eq!(
        store.month_counts("2026-11").unwrap()[0].1,
        1,
        "a replay charges nothing"
    );
}

#[test]
fn claims_lease_and_expired_leases_come_back() {
    let (_d, store) = store();
    let alice = store.add_user("alice", 1).unwrap();
    let (token, _) = token_for(&store, "alice");
    let phone = store
        .add_device("alice", android("pixel"), 1)
        .unwrap()
        .device;
    block_on(store.accept_send(send_to(
        alice.id,
        &token.id,
        "msg_1",
        vec![(phone.id.clone(), DeviceType::Android)],
        1_000,
    )))
    .unwrap();
    let claimed = block_on(store.claim_due(1_000, 10, 30_000, &Channel::ALL)).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].target,
        Some(DeliveryTarget::Fcm("fcm-pixel".into()))
    );
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        block_on(store.claim_due(2_000, 10, 30_000, &Channel::ALL))
            .unwrap()
            .is_empty(),
        "leased jobs are not claimed twice"
    );
    assert_eq!(
        block_on(store.recover_expired_leases(31_000, 31_000)).unwrap(),
        1
    );
    let again = block_on(store.claim_due(31_000, 10, 30_000, &Channel::ALL)).unwrap();
    assert_eq!(again[0].attempts, 2);
    block_on(store.complete_jobs(vec![(again[0].job_id, JobOutcome::Delivered)], 32_000)).unwrap();
    assert_eq!(
        store
            .message_status("msg_1", alice.id)
            .unwrap()
            .unwrap()
            .deliveries[0]
            .state,
        "delivered"
    );
}

#[test]
fn unreachable_device_fails_its_open_jobs() {
    let (_d, store) = store();
    let alice = store.add_user("alice", 1).unwrap();
    let (token, _) = token_for(&store, "alice");
    let phone = store
        .add_device("alice", android("pixel"), 1)
        .unwrap()
        .device;
    for id in ["msg_1", "msg_2"] {
        block_on(store.accept_send(send_to(
            alice.id,
            &token.id,
            id,
            vec![(phone.id.clone(), DeviceType::Android)],
            1_000,
        )))
        .unwrap();
    }
    let claimed = block_on(store.claim_due(1_000, 1, 30_000, &Channel::ALL)).unwrap();
    block_on(store.complete_jobs(
        vec![(
            claimed[0].job_id,
            JobOutcome::DeviceUnreachable {
                error: "UNREGISTERED".into(),
            },
        )],
        2_000,
    ))
    .unwrap();
    for id in ["msg_1", "msg_2"] {
        let d = &store
            .message_status(id, alice.id)
            .unwrap()
            .unwrap()
            .deliveries[0];
        assert_eq!(
            (d.state.as_str(), d.last_error.as_deref()),
            ("failed", Some("UNREGISTERED"))
        );
    }
    assert!(store.reachable_devices_of(alice.id).unwrap().is_empty());
}

#[test]
fn a_second_handle_sees_changes_at_once() {
    let (dir, store) = store();
    store.add_user("alice", 1).unwrap();
    let (record, secret) = token_for(&store, "alice");
    let admin = Store::open(dir.path()).unwrap();
    admin.revoke_token(&record.id, 2).unwrap();
    assert!(store.authenticate_token(secret.expose()).unwrap().is_none());
}

/// Regression: with the bundled SQLite's STAT4, the hot lookups written as JOINs were
/// re-prepared on every execution (a third of the relay's CPU under load).
#[test]
fn hot_statements_are_not_re_prepared() {
    use rusqlite::StatementStatus;
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    token_for(&store, "alice");
    store.add_device("alice", android("pixel"), 1).unwrap();
    // STREAM_SQL (ORDER BY seq LIMIT n) is still re-prepared; it runs once per stream wake-up,
    // not once per request.
    type Args = fn(i64) -> Vec<rusqlite::types::Value>;
    let cases: [(&str, Args); 3] = [
        (super::tokens::AUTH_SQL, |i| vec![vec![i as u8; 32].into()]),
        (super::devices::REACHABLE_SQL, |i| vec![(1 + i % 2).into()]),
        (super::jobs::CLAIMED_SQL, |i| vec![i.into()]),
    ];
    store
        .read(|c| {
            for (sql, args) in &cases {
                for i in 0..5 {
                    let mut stmt = c.prepare_cached(sql)?;
                    let mut rows = stmt.query(rusqlite::params_from_iter(args(i)))?;
                    while rows.next()?.is_some() {}
                    drop(rows);
                    assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn failed_pairings_older_than_the_window_do_not_count() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    let t0 = 1_000_000;
    let wrong = |now| block_on(store.redeem_pair_code("000000", android("x"), now));
    for _ in 0..99 {
        assert!(matches!(wrong(t0), Err(StoreError::NotFound(_))));
    }
    // The 99 fall out of the window: the next failure is the first of a new one.
    let later = t0 + devices::PAIR_FAILURE_WINDOW_MS + 1;
    let code = store.create_pair_code("alice", later).unwrap();
    assert!(wrong(later).is_err());
    assert!(block_on(store.redeem_pair_code(&code, android("pixel"), later)).is_ok());
    // 100 within the window invalidate a live code.
    let code = store.create_pair_code("alice", later).unwrap();
    for _ in 0..99 {
        assert!(wrong(later + 1).is_err());
    }
    assert!(block_on(store.redeem_pair_code(&code, android("late"), later + 2)).is_err());
}

#[test]
fn injected_write_fault_fails_writes_and_clears_by_itself() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    assert!(!store.writes_failing());
    store.inject_write_fault(true);
    let err = store.add_user("bob", 2).unwrap_err();
    assert!(err.is_fault(), "{err:?}");
    assert!(store.writes_failing());
    assert!(block_on(store.probe_write(3)).is_err());
    // Reads still work; nothing committed before the fault is affected.
    assert_eq!(store.list_users().unwrap().len(), 1);
    store.inject_write_fault(false);
    // A refusal is not a fault: it does not mark the store failing.
    assert!(matches!(
        store.add_user("alice", 4),
        Err(StoreError::Conflict(_))
    ));
    assert!(!store.writes_failing());
    store.add_user("bob", 5).unwrap();
    assert_eq!(store.list_users().unwrap().len(), 2);
}

#[test]
fn device_credentials_authenticate_only_their_device() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    let desk = store
        .add_device(
            "alice",
            NewDevice {
                label: "desk".into(),
                device_type: DeviceType::Extension,
                fcm_token: None,
                public_key: None,
                webpush: None,
            },
            1,
        )
        .unwrap();
    let credential = desk.credential.unwrap();
    let found = store.authenticate_device(credential.expose()).unwrap();
    assert_eq!(found.map(|d| d.id), Some(desk.device.id.clone()));
    let mut wrong = credential.expose().to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert_eq!(store.authenticate_device(&wrong).unwrap(), None);
    store.remove_device(&desk.device.id, 2).unwrap();
    assert_eq!(
        store.authenticate_device(credential.expose()).unwrap(),
        None
    );
}

#[test]
fn retention_prunes_only_finished_messages() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    let (token, _) = token_for(&store, "alice");
    let phone = store
        .add_device("alice", android("pixel"), 1)
        .unwrap()
        .device;
    let target = || vec![(phone.id.clone(), DeviceType::Android)];
    for id in ["msg_done", "msg_open"] {
        block_on(store.accept_send(send_to(token.user_id, &token.id, id, target(), 1_000)))
            .unwrap();
    }
    block_on(store.accept_send(send_to(token.user_id, &token.id, "msg_none", vec![], 1_000)))
        .unwrap();
    let jobs = block_on(store.claim_due(1_000, 10, 1_000, &Channel::ALL)).unwrap();
    let done = jobs
        .iter()
        .find(|j| j.message_id == "msg_done")
        .unwrap()
        .job_id;
    block_on(store.complete_jobs(vec![(done, JobOutcome::Delivered)], 2_000)).unwrap();
    // Finished at 2 000: not yet due at cutoff 1 999; due at 2 000.
    assert_eq!(block_on(store.prune_finished(1_999, 100)).unwrap(), 1); // msg_none
    assert_eq!(block_on(store.prune_finished(2_000, 100)).unwrap(), 1); // msg_done
    assert!(
        store
            .message_status("msg_done", token.user_id)
            .unwrap()
            .is_none()
    );
    // msg_open is leased (unfinished): kept whatever the cutoff.
    assert_eq!(block_on(store.prune_finished(i64::MAX, 100)).unwrap(), 0);
    assert!(
        store
            .message_status("msg_open", token.user_id)
            .unwrap()
            .is_some()
    );
}

#[test]
fn backup_is_a_standalone_private_copy() {
    let (_d, store) = store();
    store.add_user("alice", 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy.db");
    std::fs::write(&file, b"an older backup").unwrap();
    store.backup(&file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join(DB_FILE)).unwrap();
    let copy = Store::open(restored.path()).unwrap();
    assert_eq!(copy.list_users().unwrap()[0].name, "alice");
}
