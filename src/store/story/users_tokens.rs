//! Users and sender tokens: unique names, removal with everything owned, tokens that
//! authenticate until revoked — at once, through any handle on the store.

use super::*;

story!(
    users_are_unique_listed_by_name_and_removable,
    removing_a_user_removes_their_tokens_and_devices,
    tokens_authenticate_until_revoked,
    a_revocation_through_another_handle_takes_effect_at_once,
    tokens_are_listed_per_user_in_creation_order,
    a_sender_is_its_token_and_its_owners_reachable_devices,
);

async fn users_are_unique_listed_by_name_and_removable(store: &Store) {
    let bob = store.add_user("bob", T0).await.unwrap();
    let alice = store.add_user("alice", T0 + 1).await.unwrap();
    assert_ne!(alice.id, bob.id);
    assert_eq!((alice.name.as_str(), alice.created_at), ("alice", T0 + 1));
    assert!(matches!(
        store.add_user("alice", T0 + 2).await,
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(store.user_by_name("alice").await.unwrap(), alice);
    assert!(matches!(
        store.user_by_name("carol").await,
        Err(StoreError::NotFound(_))
    ));
    store.remove_user("alice").await.unwrap();
    assert!(matches!(
        store.remove_user("alice").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_users().await.unwrap(), vec![bob]);
    // The name is free again.
    store.add_user("alice", T0 + 3).await.unwrap();
}

async fn removing_a_user_removes_their_tokens_and_devices(store: &Store) {
    let (alice, token, secret) = user_with_token(store, "alice").await;
    let (_, bobs_token, bobs_secret) = user_with_token(store, "bob").await;
    let phone = device(store, "alice", android("pixel")).await;
    let desk = store
        .add_device("alice", extension("desk"), T0)
        .await
        .unwrap();
    let bobs_phone = device(store, "bob", android("bobs")).await;
    let code = store.create_pair_code("alice", T0).await.unwrap();
    accept(store, send(&token, "msg_a", &[&phone], T0)).await;
    store.remove_user("alice").await.unwrap();

    assert_eq!(
        store.authenticate_token(secret.expose()).await.unwrap(),
        None
    );
    let credential = desk.credential;
    assert_eq!(
        store
            .authenticate_device(credential.expose())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.device(&phone.id).await.unwrap(), None);
    assert!(
        store
            .reachable_devices_of(alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.message_status("msg_a", alice.id).await.unwrap(), None);
    assert!(
        store
            .redeem_pair_code(&code, android("late"), T0 + 1)
            .await
            .is_err(),
        "a removed user's pairing code is gone"
    );
    // Bob is untouched.
    let found = store
        .authenticate_token(bobs_secret.expose())
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.id), Some(bobs_token.id));
    assert_eq!(store.list_devices(None).await.unwrap(), vec![bobs_phone]);
    assert_eq!(store.list_tokens(None).await.unwrap().len(), 1);
}

async fn tokens_authenticate_until_revoked(store: &Store) {
    let alice = store.add_user("alice", T0).await.unwrap();
    let (record, secret) = store
        .create_token(
            NewToken {
                user: "alice".into(),
                label: "backup-job".into(),
                priority_cap: Some(Priority::High),
                scope_devices: Some("pixel".into()),
                test: true,
            },
            T0 + 5,
        )
        .await
        .unwrap();
    assert!(secret.expose().starts_with("rfk_test_"), "a test token");
    assert_eq!(
        (record.user_id, record.user.as_str(), record.created_at),
        (alice.id, "alice", T0 + 5)
    );
    assert!(!record.revoked);
    assert_eq!(record.last_used_at, None);

    let found = store
        .authenticate_token(secret.expose())
        .await
        .unwrap()
        .expect("the token authenticates");
    assert_eq!(found, record, "every field round-trips");
    assert_eq!(
        store
            .authenticate_token("rfk_live_00000000000000000000000000000000")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.create_token(NewToken::plain("nobody", "x"), T0).await,
        Err(StoreError::NotFound(_))
    ));

    store.revoke_token(&record.id, T0 + 10).await.unwrap();
    assert_eq!(
        store.authenticate_token(secret.expose()).await.unwrap(),
        None,
        "a revoked token is refused at the next request"
    );
    let listed = store.list_tokens(Some("alice")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);
    // Revoking again is harmless; an unknown id is not found.
    store.revoke_token(&record.id, T0 + 20).await.unwrap();
    assert!(matches!(
        store.revoke_token("tok_0000000000000000", T0).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_revocation_through_another_handle_takes_effect_at_once(s: Story) {
    let store = &s.store;
    let (_, record, secret) = user_with_token(store, "alice").await;
    assert!(
        store
            .authenticate_token(secret.expose())
            .await
            .unwrap()
            .is_some()
    );
    // `reflecto admin` (or another relay) revokes through its own handle.
    let admin = s.open(Limits::HOSTED, T0).await;
    admin.revoke_token(&record.id, T0 + 1).await.unwrap();
    assert_eq!(
        store.authenticate_token(secret.expose()).await.unwrap(),
        None
    );
    // And a token it creates works here at once.
    let (fresh, fresh_secret) = token_of(&admin, "alice", "new").await;
    let found = store
        .authenticate_token(fresh_secret.expose())
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.id), Some(fresh.id));
}

async fn tokens_are_listed_per_user_in_creation_order(store: &Store) {
    store.add_user("alice", T0).await.unwrap();
    store.add_user("bob", T0).await.unwrap();
    let mut ids = Vec::new();
    for (i, (user, label)) in [("alice", "one"), ("bob", "two"), ("alice", "three")]
        .into_iter()
        .enumerate()
    {
        let (record, _) = token_at(store, user, label, T0 + i as i64).await;
        ids.push(record.id);
    }
    let labels =
        |tokens: Vec<TokenRecord>| -> Vec<String> { tokens.into_iter().map(|t| t.label).collect() };
    assert_eq!(
        labels(store.list_tokens(Some("alice")).await.unwrap()),
        ["one", "three"]
    );
    assert_eq!(
        labels(store.list_tokens(None).await.unwrap()),
        ["one", "two", "three"]
    );
    assert!(matches!(
        store.list_tokens(Some("carol")).await,
        Err(StoreError::NotFound(_))
    ));
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 3);
}

/// Who sends with `secret`, if anyone.
async fn sender_of(store: &Store, secret: &str) -> Option<Sender> {
    store.authenticate_sender(secret).await.unwrap()
}

/// The send path's one lookup: the token, and the owner's reachable devices oldest first.
async fn a_sender_is_its_token_and_its_owners_reachable_devices(store: &Store) {
    let (_, token, secret) = user_with_token(store, "alice").await;
    let alone = sender_of(store, secret.expose()).await.unwrap();
    assert_eq!(alone.token, token);
    assert!(
        alone.devices.is_empty(),
        "a token whose owner has no device"
    );
    let desk = device(store, "alice", extension("desk")).await;
    let phone = device(store, "alice", android("pixel")).await;
    let (_, _, bob) = user_with_token(store, "bob").await;
    device(store, "bob", android("bobs")).await;
    let sender = sender_of(store, secret.expose()).await.unwrap();
    assert_eq!(sender.token, token);
    let mut expected = vec![desk, phone];
    expected.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    assert_eq!(sender.devices, expected, "oldest first, then by id");
    assert_eq!(
        sender_of(store, bob.expose()).await.unwrap().devices.len(),
        1
    );
    store.revoke_token(&token.id, T0 + 5).await.unwrap();
    assert!(sender_of(store, secret.expose()).await.is_none());
    assert!(sender_of(store, "rfk_live_nope").await.is_none());
}
