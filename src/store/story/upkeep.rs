//! Upkeep and health: retention of finished messages, pruning of windows nobody needs, the
//! VAPID key kept across restarts, and the write probe with its fault switch.

use super::*;

story!(
    retention_prunes_only_finished_messages,
    prune_forgets_idempotency_keys_after_a_day,
    the_vapid_key_is_created_once_and_kept,
    an_injected_write_fault_fails_writes_and_clears_by_itself,
);

async fn retention_prunes_only_finished_messages(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    for id in ["msg_done", "msg_open"] {
        accept(store, send(&token, id, &[&phone], T0)).await;
    }
    accept(store, send(&token, "msg_none", &[], T0)).await;
    let jobs = store.claim_due(T0, 10, 1_000, &Channel::ALL).await.unwrap();
    let done = lease_of(&jobs, "msg_done");
    complete(store, done, JobOutcome::Delivered, T0 + 1_000).await;
    // Nothing is older than a cutoff before the sends.
    assert_eq!(store.prune_finished(T0 - 1, 100).await.unwrap(), 0);
    // Finished at T0 + 1000: not yet due at cutoff T0 + 999 (but the message with no
    // delivery is); due at T0 + 1000.
    assert_eq!(store.prune_finished(T0 + 999, 100).await.unwrap(), 1);
    assert_eq!(
        store.message_status("msg_none", alice.id).await.unwrap(),
        None
    );
    assert_eq!(store.prune_finished(T0 + 1_000, 100).await.unwrap(), 1);
    assert_eq!(
        store.message_status("msg_done", alice.id).await.unwrap(),
        None
    );
    // msg_open is leased (unfinished): kept whatever the cutoff.
    assert_eq!(store.prune_finished(i64::MAX, 100).await.unwrap(), 0);
    assert!(
        store
            .message_status("msg_open", alice.id)
            .await
            .unwrap()
            .is_some()
    );

    // At most `limit` per call.
    for i in 0..5 {
        accept(store, send(&token, &format!("old{i}"), &[], T0 + 2_000)).await;
    }
    assert_eq!(store.prune_finished(T0 + 2_000, 2).await.unwrap(), 2);
    assert_eq!(store.prune_finished(T0 + 2_000, 2).await.unwrap(), 2);
    assert_eq!(store.prune_finished(T0 + 2_000, 2).await.unwrap(), 1);
    assert_eq!(store.prune_finished(T0 + 2_000, 2).await.unwrap(), 0);
}

async fn prune_forgets_idempotency_keys_after_a_day(store: &Store) {
    let (_, token, _) = user_with_token(store, "alice").await;
    let response = StoredResponse {
        status: 200,
        body: r#"{"id":"msg_1"}"#.into(),
    };
    let mut first = send(&token, "msg_1", &[], T0);
    first.idempotency = Some(("key-1".into(), response.clone()));
    accept(store, first).await;
    let mut later = send(&token, "msg_2", &[], T0 + HOUR);
    later.idempotency = Some(("key-2".into(), response.clone()));
    accept(store, later).await;
    store.prune(T0 + DAY - 1).await.unwrap();
    assert_eq!(
        store
            .idempotent_response(&token.id, "key-1", T0 + 1)
            .await
            .unwrap(),
        Some(response.clone()),
        "kept while inside its day"
    );
    store.prune(T0 + DAY).await.unwrap();
    assert_eq!(
        store
            .idempotent_response(&token.id, "key-1", T0 + 1)
            .await
            .unwrap(),
        None,
        "pruned once its day is over"
    );
    assert_eq!(
        store
            .idempotent_response(&token.id, "key-2", T0 + DAY)
            .await
            .unwrap(),
        Some(response)
    );
    // Pruning an empty or already pruned store is harmless.
    store.prune(T0 + DAY).await.unwrap();
    store.sweep_limits(T0 + DAY).await.unwrap();
}

async fn the_vapid_key_is_created_once_and_kept(s: Story) {
    let first = s.store.vapid_private_key([1; 32], T0).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    let again = s.store.vapid_private_key([2; 32], T0 + 1).await.unwrap();
    assert_eq!(again, first, "a second call keeps the first key");
    let s2 = s.open(Limits::HOSTED, T0 + 2).await;
    drop(s.store);
    assert_eq!(
        s2.vapid_private_key([3; 32], T0 + 2).await.unwrap(),
        first,
        "and so does a restart"
    );
}

async fn an_injected_write_fault_fails_writes_and_clears_by_itself(store: &Store) {
    store.ping().await.unwrap();
    store.probe_write(T0).await.unwrap();
    store.add_user("alice", T0).await.unwrap();
    assert!(!store.writes_failing());
    store.inject_write_fault(true);
    let err = store.add_user("bob", T0 + 1).await.unwrap_err();
    assert!(err.is_fault(), "{err:?}");
    assert!(store.writes_failing());
    assert!(store.probe_write(T0 + 2).await.unwrap_err().is_fault());
    // Reads still work; nothing committed before the fault is affected.
    store.ping().await.unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    store.inject_write_fault(false);
    // A refusal is not a fault: it does not mark the store failing.
    assert!(matches!(
        store.add_user("alice", T0 + 3).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(!store.writes_failing());
    store.add_user("bob", T0 + 4).await.unwrap();
    store.probe_write(T0 + 5).await.unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 2);
}
