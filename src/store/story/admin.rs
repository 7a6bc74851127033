//! The operator's chapter (SPEC §1.19): admin tokens that authenticate until revoked and never
//! as sender tokens, an address noted new only once, the audit log paged newest first and
//! pruned by age, and the operator's message pages (newest first, by user, by a delivery's
//! state, after a given message).

use super::*;
use crate::store::admin::Actor;

story!(
    admin_tokens_authenticate_until_revoked_and_never_send,
    an_address_is_new_once_per_admin_token,
    the_audit_log_pages_newest_first_and_prunes_by_age,
    message_pages_are_newest_first_and_filtered,
);

async fn admin_tokens_authenticate_until_revoked_and_never_send(store: &Store) {
    let (record, secret) = store.create_admin_token("ops", T0).await.unwrap();
    assert!(secret.expose().starts_with("rfa_live_"));
    let found = store.authenticate_admin(secret.expose()).await.unwrap();
    assert_eq!(
        found.as_ref().map(|t| t.id.as_str()),
        Some(record.id.as_str())
    );
    assert_eq!(
        store.authenticate_token(secret.expose()).await.unwrap(),
        None
    );
    let listed = store.list_admin_tokens().await.unwrap();
    assert_eq!(listed, vec![record.clone()]);
    // Revoked by id through the one revoke for both kinds; listed as revoked.
    store.revoke_any_token(&record.id, T0 + 1).await.unwrap();
    assert_eq!(
        store.authenticate_admin(secret.expose()).await.unwrap(),
        None
    );
    assert!(store.list_admin_tokens().await.unwrap()[0].revoked);
    assert!(matches!(
        store.revoke_any_token("tok_nope", T0).await,
        Err(StoreError::NotFound(_))
    ));
    // A sender token is revoked through the same call.
    let (_, token, sender) = user_with_token(store, "alice").await;
    store.revoke_any_token(&token.id, T0 + 2).await.unwrap();
    assert_eq!(
        store.authenticate_token(sender.expose()).await.unwrap(),
        None
    );
}

async fn an_address_is_new_once_per_admin_token(store: &Store) {
    let (a, _) = store.create_admin_token("a", T0).await.unwrap();
    let (b, _) = store.create_admin_token("b", T0).await.unwrap();
    assert!(store.note_admin_use(&a.id, "192.0.2.1", T0).await.unwrap());
    assert!(
        !store
            .note_admin_use(&a.id, "192.0.2.1", T0 + 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .note_admin_use(&a.id, "192.0.2.2", T0 + 2)
            .await
            .unwrap()
    );
    assert!(
        store
            .note_admin_use(&b.id, "192.0.2.1", T0 + 3)
            .await
            .unwrap()
    );
    let listed = store.list_admin_tokens().await.unwrap();
    let a_now = listed.iter().find(|t| t.id == a.id).unwrap();
    assert_eq!(a_now.last_used_at, Some(T0 + 2));
}

async fn the_audit_log_pages_newest_first_and_prunes_by_age(store: &Store) {
    let admin = Actor::Admin {
        label: "ops".into(),
        ip: "192.0.2.1".into(),
    };
    for (i, name) in ["u1", "u2", "u3", "u4", "u5"].iter().enumerate() {
        let actor = if i % 2 == 0 { &Actor::Cli } else { &admin };
        store
            .audit(actor, "user.add", name, T0 + i as i64 * DAY)
            .await
            .unwrap();
    }
    let page = store.list_audit(None, 2).await.unwrap();
    let targets: Vec<&str> = page.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["u5", "u4"]);
    assert_eq!(
        (page[1].actor.as_str(), page[1].ip.as_deref()),
        ("admin:ops", Some("192.0.2.1"))
    );
    assert_eq!(
        (page[0].actor.as_str(), page[0].ip.as_deref()),
        ("cli", None)
    );
    let next = store.list_audit(Some(page[1].id), 10).await.unwrap();
    let targets: Vec<&str> = next.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["u3", "u2", "u1"]);
    assert_eq!(store.prune_audit(T0 + DAY).await.unwrap(), 2);
    assert_eq!(store.list_audit(None, 10).await.unwrap().len(), 3);
}

async fn message_pages_are_newest_first_and_filtered(store: &Store) {
    let (_, token, [desk]) = user_with(store, "alice", [extension("desk")]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = format!("msg_{i}");
        accept(store, send(&token, &id, &[&desk], T0 + i * MINUTE)).await;
        ids.push(id);
    }
    let page = |q: MessageQuery| async move { store.admin_messages(q).await.unwrap() };
    let all = page(MessageQuery {
        limit: 3,
        ..Default::default()
    })
    .await;
    let got: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str(), ids[2].as_str()]);
    assert_eq!(all[0].user, "alice");
    assert_eq!(
        all[0].deliveries,
        vec![(desk.id.clone(), JobState::Pending, T0 + 4 * MINUTE)]
    );
    let rest = page(MessageQuery {
        before: Some(ids[2].clone()),
        limit: 10,
        ..Default::default()
    })
    .await;
    let got: Vec<&str> = rest.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
    let delivered = page(MessageQuery {
        state: Some(JobState::Delivered),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert!(delivered.is_empty());
    let pending = page(MessageQuery {
        state: Some(JobState::Pending),
        user: Some("alice".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(pending.len(), 5);
    let nobody = page(MessageQuery {
        user: Some("bob".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert!(nobody.is_empty());
    let counts = store.admin_counts(T0 - DAY).await.unwrap();
    assert_eq!(
        (
            counts.users,
            counts.devices,
            counts.tokens,
            counts.messages_24h,
            counts.pending
        ),
        (1, 1, 1, 5, 5)
    );
}
