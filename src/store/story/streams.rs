//! Desktop (extension) streams: each device's unacknowledged events in order, resumable after
//! a sequence number; acknowledgements that count only what was pending; removal of a device.

use super::*;

story!(
    stream_events_come_in_order_after_a_sequence_number,
    an_ack_counts_only_pending_events_of_that_device,
    removing_a_device_fails_its_pending_events,
    a_desktop_device_removed_before_the_commit_gets_no_job,
);

async fn stream_events_come_in_order_after_a_sequence_number(store: &Store) {
    let (_, token, [desk, laptop]) =
        user_with(store, "alice", [extension("desk"), extension("laptop")]).await;
    for (i, id) in ["m1", "m2", "m3"].into_iter().enumerate() {
        accept(store, send(&token, id, &[&desk], T0 + i as i64)).await;
    }
    accept(store, send(&token, "both", &[&laptop, &desk], T0 + 3)).await;
    let events = stream_of(store, &desk).await;
    let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3", "both"]);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "{events:?}");
    assert!(events[0].seq > 0, "0 means 'from the start'");
    assert!(
        events
            .iter()
            .all(|e| e.envelope.as_deref() == Some(ENVELOPE))
    );
    assert!(events.iter().all(|e| e.payload.is_none()));
    // Resuming after a sequence number, a page at a time.
    let page = store
        .stream_events(&desk.id, events[0].seq, 2)
        .await
        .unwrap();
    assert_eq!(page, events[1..3].to_vec());
    let rest = store.stream_events(&desk.id, page[1].seq, 2).await.unwrap();
    assert_eq!(rest, events[3..].to_vec());
    assert!(
        store
            .stream_events(&desk.id, events[3].seq, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The other device sees only its own.
    let theirs = stream_of(store, &laptop).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].message_id, "both");
    assert!(
        store
            .stream_events("dev_0000000000000000", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_ack_counts_only_pending_events_of_that_device(s: Story) {
    let store = &s.store;
    let (alice, token, [desk, laptop]) =
        user_with(store, "alice", [extension("desk"), extension("laptop")]).await;
    accept(store, send(&token, "m1", &[&desk], T0)).await;
    accept(store, send(&token, "m2", &[&desk], T0)).await;
    accept(store, send(&token, "theirs", &[&laptop], T0)).await;
    let mine = stream_of(store, &desk).await;
    let theirs = stream_of(store, &laptop).await;
    let (first, second) = (mine[0].seq, mine[1].seq);
    // The same seq twice, one unknown, and the other device's seq (if it differs: sequence
    // numbers are per device, so it may name one of ours).
    let foreign = theirs[0].seq;
    let mut seqs = vec![first, first, second + 1000];
    if foreign != second {
        seqs.push(foreign);
    }
    assert_eq!(ack_count(store, &desk, seqs, T0 + 10).await, 1);
    assert_eq!(
        ack_count(store, &desk, vec![first], T0 + 11).await,
        0,
        "an event is acknowledged once"
    );
    let left = stream_of(store, &desk).await;
    assert_eq!(left, mine[1..].to_vec());
    let d = &status_of(store, "m1", alice.id).await.deliveries[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 1));
    assert_eq!(states(store, "m2", alice.id).await, ["queued"]);
    assert_eq!(
        states(store, "theirs", alice.id).await,
        ["queued"],
        "one device's ack never touches another's events"
    );
    assert_eq!(stream_of(store, &laptop).await, theirs);
    // An ack through another handle (another relay) counts too.
    let other = s.open(Limits::HOSTED, T0).await;
    assert_eq!(ack_count(&other, &desk, vec![second], T0 + 12).await, 1);
    assert!(stream_of(store, &desk).await.is_empty());
    assert_eq!(ack_count(store, &desk, vec![], T0 + 13).await, 0);
}

async fn removing_a_device_fails_its_pending_events(store: &Store) {
    let devices = [extension("desk"), android("pixel"), extension("laptop")];
    let (alice, token, [desk, phone, laptop]) = user_with(store, "alice", devices).await;
    accept(store, send(&token, "m1", &[&desk, &phone, &laptop], T0)).await;
    accept(store, send(&token, "m2", &[&desk], T0)).await;
    let acked = store.stream_events(&desk.id, 0, 1).await.unwrap();
    store
        .ack_stream_events(&desk.id, vec![acked[0].seq], T0 + 1)
        .await
        .unwrap();
    let depth = store.queue_depth().await.unwrap();
    store.remove_device(&desk.id, T0 + 2).await.unwrap();
    assert!(stream_of(store, &desk).await.is_empty());
    let m2 = &status_of(store, "m2", alice.id).await.deliveries[0];
    assert_eq!(
        (m2.state.as_str(), m2.last_error.as_deref()),
        ("failed", Some("device_removed")),
        "an event the removed device never acknowledged fails"
    );
    assert_eq!(
        states(store, "m1", alice.id).await,
        ["delivered", "queued", "queued"],
        "what it acknowledged stays delivered; other devices are untouched"
    );
    assert_eq!(store.queue_depth().await.unwrap(), depth - 1);
    assert_eq!(stream_of(store, &laptop).await.len(), 1);
    assert_eq!(
        ack_count(store, &desk, vec![acked[0].seq + 1], T0 + 3).await,
        0
    );
}

/// The accept reads the targets before it commits: a desktop device removed in between (by
/// `reflecto admin`, or on another relay) is skipped instead of failing the whole send.
async fn a_desktop_device_removed_before_the_commit_gets_no_job(store: &Store) {
    let (alice, token, [desk, laptop]) =
        user_with(store, "alice", [extension("desk"), extension("laptop")]).await;
    store.remove_device(&desk.id, T0).await.unwrap();
    accept(store, send(&token, "m1", &[&desk, &laptop], T0 + 1)).await;
    assert_eq!(states(store, "m1", alice.id).await, ["queued"]);
    assert_eq!(stream_of(store, &laptop).await.len(), 1);
}
