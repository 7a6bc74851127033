//! Devices and pairing (SPEC §1.9): single-use codes that expire after 10 minutes, the
//! failure limit that invalidates every outstanding code, stream credentials, and the device
//! records the relay targets.

use super::*;

/// SPEC §1.9: a code lives 10 minutes; the 100th failure within 10 minutes invalidates codes.
const CODE_TTL: i64 = 10 * MINUTE;
const FAILURE_LIMIT: usize = 100;
const FAILURE_WINDOW: i64 = 10 * MINUTE;

story!(
    pairing_codes_are_single_use_and_expire,
    the_hundredth_failed_pairing_invalidates_every_code,
    failed_pairings_older_than_the_window_do_not_count,
    device_credentials_authenticate_only_their_device,
    devices_keep_what_delivery_needs,
    devices_missing_what_delivery_needs_are_refused,
    devices_are_listed_per_user_oldest_first,
    a_device_is_seen_when_it_connects_acks_or_a_send_to_it_is_accepted,
);

async fn pairing_codes_are_single_use_and_expire(store: &Store) {
    store.add_user("alice", T0).await.unwrap();
    assert!(matches!(
        store.create_pair_code("nobody", T0).await,
        Err(StoreError::NotFound(_))
    ));
    let code = store.create_pair_code("alice", T0).await.unwrap();
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    let paired = store
        .redeem_pair_code(&code, android("pixel"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(paired.device.user, "alice");
    assert_eq!(paired.device.device_type, DeviceType::Android);
    assert!(paired.device.id.starts_with("dev_"));
    assert!(paired.device.reachable);
    // SPEC §1.16: every device type gets a credential, to acknowledge with.
    assert!(paired.credential.expose().starts_with("rfd_live_"));
    let phone = store
        .authenticate_device(paired.credential.expose())
        .await
        .unwrap()
        .expect("a phone's credential names it");
    assert_eq!(phone.id, paired.device.id);
    assert!(matches!(
        store
            .redeem_pair_code(&code, android("again"), T0 + 2)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Valid until the last millisecond of its 10 minutes, not at the 10th minute itself.
    let last = store.create_pair_code("alice", T0).await.unwrap();
    assert!(
        store
            .redeem_pair_code(&last, android("last"), T0 + CODE_TTL - 1)
            .await
            .is_ok()
    );
    let late = store.create_pair_code("alice", T0).await.unwrap();
    assert!(
        store
            .redeem_pair_code(&late, android("late"), T0 + CODE_TTL)
            .await
            .is_err()
    );
    let labels: Vec<String> = store
        .list_devices(Some("alice"))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.label)
        .collect();
    assert_eq!(labels, ["pixel", "last"], "refused redemptions add nothing");
}

/// A redemption of a code nobody issued (a code issued right now cannot be guessed by a test:
/// "000000" may be it one time in a million, so the story keeps codes out of the guesses).
async fn wrong_guess(store: &Store, live: &[&str], now: i64) {
    let guess = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|g| !live.contains(&g.as_str()))
        .unwrap();
    assert!(matches!(
        store.redeem_pair_code(&guess, android("x"), now).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn the_hundredth_failed_pairing_invalidates_every_code(s: Story) {
    let store = &s.store;
    store.add_user("alice", T0).await.unwrap();
    store.add_user("bob", T0).await.unwrap();
    let alices = store.create_pair_code("alice", T0).await.unwrap();
    let bobs = store.create_pair_code("bob", T0).await.unwrap();
    let kept = store.create_pair_code("bob", T0).await.unwrap();
    let live = [alices.as_str(), bobs.as_str(), kept.as_str()];
    // Failures counted across every handle (every relay, `reflecto admin`).
    let other = s.open(Limits::HOSTED, T0).await;
    for i in 0..FAILURE_LIMIT - 1 {
        let on = if i % 2 == 0 { store } else { &other };
        wrong_guess(on, &live, T0 + 1).await;
    }
    // 99 failures: codes still work.
    store
        .redeem_pair_code(&kept, android("kept"), T0 + 2)
        .await
        .unwrap();
    wrong_guess(&other, &live, T0 + 3).await; // the 100th
    for code in [&alices, &bobs] {
        assert!(
            store
                .redeem_pair_code(code, android("late"), T0 + 4)
                .await
                .is_err(),
            "the 100th failure invalidated every outstanding code"
        );
    }
    // SPEC §1.19: the invalidation is in the audit log, once, by the relay, naming no code.
    let audit = store.list_audit(None, 100).await.unwrap();
    let invalidations: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "pairing.invalidate")
        .collect();
    assert_eq!(invalidations.len(), 1, "{audit:?}");
    assert_eq!(
        (invalidations[0].actor.as_str(), invalidations[0].at),
        ("relay", T0 + 3)
    );
    for code in live {
        assert!(
            !format!("{audit:?}").contains(code),
            "no pairing code in the audit log"
        );
    }
    // The operator issues a new one; while the window is full, every failure invalidates
    // again, but a code redeemed before the next failure works.
    let fresh = store.create_pair_code("alice", T0 + 5).await.unwrap();
    store
        .redeem_pair_code(&fresh, android("fresh"), T0 + 6)
        .await
        .unwrap();
}

async fn failed_pairings_older_than_the_window_do_not_count(store: &Store) {
    store.add_user("alice", T0).await.unwrap();
    for _ in 0..FAILURE_LIMIT - 1 {
        wrong_guess(store, &[], T0).await;
    }
    // The 99 fall out of the window: the next failure is the first of a new one.
    let later = T0 + FAILURE_WINDOW + 1;
    let code = store.create_pair_code("alice", later).await.unwrap();
    wrong_guess(store, &[&code], later).await;
    store
        .redeem_pair_code(&code, android("pixel"), later)
        .await
        .unwrap();
    // 100 within the window invalidate a live code.
    let code = store.create_pair_code("alice", later).await.unwrap();
    for _ in 0..FAILURE_LIMIT - 1 {
        wrong_guess(store, &[&code], later + 1).await;
    }
    assert!(
        store
            .redeem_pair_code(&code, android("late"), later + 2)
            .await
            .is_err()
    );
}

async fn device_credentials_authenticate_only_their_device(store: &Store) {
    store.add_user("alice", T0).await.unwrap();
    let code = store.create_pair_code("alice", T0).await.unwrap();
    let desk = store
        .redeem_pair_code(&code, extension("desk"), T0 + 1)
        .await
        .unwrap();
    let laptop = store
        .add_device("alice", extension("laptop"), T0)
        .await
        .unwrap();
    let credential = desk.credential;
    assert!(credential.expose().starts_with("rfd_live_"));
    let found = store
        .authenticate_device(credential.expose())
        .await
        .unwrap();
    assert_eq!(found, Some(desk.device.clone()));
    let other = laptop.credential;
    assert_ne!(other.expose(), credential.expose());
    assert_eq!(
        store
            .authenticate_device(other.expose())
            .await
            .unwrap()
            .map(|d| d.id),
        Some(laptop.device.id.clone())
    );
    let mut wrong = credential.expose().to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert_eq!(store.authenticate_device(&wrong).await.unwrap(), None);
    assert_eq!(store.authenticate_device("").await.unwrap(), None);

    store.remove_device(&desk.device.id, T0 + 2).await.unwrap();
    assert_eq!(
        store
            .authenticate_device(credential.expose())
            .await
            .unwrap(),
        None,
        "a removed device's credential stops working at once"
    );
    assert!(matches!(
        store.remove_device(&desk.device.id, T0 + 3).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .authenticate_device(other.expose())
            .await
            .unwrap()
            .is_some()
    );
}

async fn devices_keep_what_delivery_needs(store: &Store) {
    let alice = store.add_user("alice", T0).await.unwrap();
    let (_, public) = crate::api::sealed::generate_key_pair();
    let padded = format!("{public}=");
    let mut sealed = android("sealed");
    sealed.public_key = Some(padded);
    let phone = device(store, "alice", sealed).await;
    assert_eq!(
        phone.public_key.as_deref(),
        Some(public.as_str()),
        "stored without padding"
    );
    assert_eq!(phone.fcm_token.as_deref(), Some("fcm-sealed"));
    let browser = device(store, "alice", webpush("browser")).await;
    assert_eq!(browser.webpush, Some(subscription("browser")));
    assert_eq!(browser.device_type, DeviceType::Webpush);

    for record in [&phone, &browser] {
        let read = store.device(&record.id).await.unwrap();
        assert_eq!(read.as_ref(), Some(record), "the record round-trips");
        assert_eq!(read.unwrap().user_id, alice.id);
    }
    assert_eq!(store.device("dev_0000000000000000").await.unwrap(), None);
}

async fn devices_missing_what_delivery_needs_are_refused(store: &Store) {
    store.add_user("alice", T0).await.unwrap();
    let mut no_token = android("a");
    no_token.fcm_token = None;
    let mut empty_token = android("b");
    empty_token.fcm_token = Some(String::new());
    let mut no_subscription = webpush("c");
    no_subscription.webpush = None;
    let mut bad_key = android("d");
    bad_key.public_key = Some("not a key".into());
    for new in [no_token, empty_token, no_subscription, bad_key] {
        let label = new.label.clone();
        assert!(
            matches!(
                store.add_device("alice", new, T0).await,
                Err(StoreError::Conflict(_))
            ),
            "{label}"
        );
    }
    let code = store.create_pair_code("alice", T0).await.unwrap();
    let mut no_token = android("e");
    no_token.fcm_token = None;
    assert!(matches!(
        store.redeem_pair_code(&code, no_token, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_device("nobody", android("f"), T0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_devices(None).await.unwrap().is_empty());
}

async fn devices_are_listed_per_user_oldest_first(store: &Store) {
    let alice = store.add_user("alice", T0).await.unwrap();
    store.add_user("bob", T0).await.unwrap();
    let second = store
        .add_device("alice", android("second"), T0 + 2)
        .await
        .unwrap()
        .device;
    let first = store
        .add_device("alice", extension("first"), T0 + 1)
        .await
        .unwrap()
        .device;
    let bobs = device(store, "bob", android("bobs")).await;
    assert_eq!(
        store.list_devices(Some("alice")).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.list_devices(None).await.unwrap().len(), 3);
    assert!(matches!(
        store.list_devices(Some("carol")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.reachable_devices_of(alice.id).await.unwrap(),
        vec![first, second.clone()]
    );
    assert_eq!(
        store.reachable_devices_of(bobs.user_id).await.unwrap(),
        vec![bobs]
    );
    store.remove_device(&second.id, T0 + 3).await.unwrap();
    assert_eq!(store.reachable_devices_of(alice.id).await.unwrap().len(), 1);
}

/// SPEC §2.5: a device never seen says so; its stream connecting, its ack, and a push or FCM
/// send accepted for it each record when it was last seen. An ack also says when each newly
/// delivered event was accepted (the dispatch latency of the desktop channel).
async fn a_device_is_seen_when_it_connects_acks_or_a_send_to_it_is_accepted(store: &Store) {
    let (_, token, [phone, desk]) =
        user_with(store, "alice", [android("pixel"), extension("desk")]).await;
    let seen = |id: String| async move { store.device(&id).await.unwrap().unwrap().last_seen_at };
    assert_eq!((phone.last_seen_at, desk.last_seen_at), (None, None));
    assert_eq!(
        seen(desk.id.clone()).await,
        None,
        "never seen until it shows up"
    );

    store.mark_seen(&desk.id, T0 + 1).await.unwrap();
    assert_eq!(seen(desk.id.clone()).await, Some(T0 + 1));

    accept(store, send(&token, "msg_1", &[&phone, &desk], T0 + 2)).await;
    let events = stream_of(store, &desk).await;
    let seqs = vec![events[0].seq];
    let acked = store.ack_stream_events(&desk.id, seqs.clone(), T0 + 5);
    assert_eq!(
        acked.await.unwrap(),
        [AckedEvent {
            message_id: "msg_1".into(),
            kind: JobKind::Message,
            accepted_at: T0 + 2
        }]
    );
    assert_eq!(seen(desk.id.clone()).await, Some(T0 + 5));
    let again = store
        .ack_stream_events(&desk.id, seqs, T0 + 6)
        .await
        .unwrap();
    assert!(again.is_empty(), "an event is delivered once");
    assert_eq!(
        seen(desk.id.clone()).await,
        Some(T0 + 6),
        "an ack still shows it is there"
    );

    let claimed = claim(store, T0 + 3, 10, &Channel::ALL).await;
    assert_eq!(
        seen(phone.id.clone()).await,
        None,
        "a claim is not a delivery"
    );
    let outcome = vec![(claimed[0].lease(), JobOutcome::Delivered)];
    store.complete_jobs(outcome, T0 + 7).await.unwrap();
    assert_eq!(seen(phone.id.clone()).await, Some(T0 + 7));
    let listed = store.list_devices(Some("alice")).await.unwrap();
    let seen_of = |id: &str| listed.iter().find(|d| d.id == id).unwrap().last_seen_at;
    assert_eq!(
        (seen_of(&phone.id), seen_of(&desk.id)),
        (Some(T0 + 7), Some(T0 + 6)),
        "listed with when each was seen"
    );
}
