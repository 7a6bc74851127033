//! The delivery queue: due jobs claimed under a lease (never by two claimers), the outcomes of
//! attempts, expiry, recovery of leases whose worker died, and what the worker's timer and the
//! queue-depth metric read.

use super::*;
use std::collections::HashSet;

story!(
    claims_lease_and_expired_leases_come_back,
    a_renewed_lease_is_kept_until_its_new_end,
    claims_take_due_jobs_of_the_given_channels_oldest_first,
    two_claimers_take_disjoint_jobs,
    outcomes_finish_or_reschedule_jobs,
    an_unreachable_device_fails_only_its_open_jobs,
    a_wave_judges_an_unreachable_device_after_the_jobs_delivered_to_it,
    waiting_jobs_expire_with_their_ttl,
    next_due_at_and_queue_depth_follow_the_queue,
    a_late_outcome_cannot_undo_a_finished_job,
    a_stalled_claim_cannot_touch_the_lease_taken_since,
);

async fn claims_lease_and_expired_leases_come_back(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "msg_1", &[&phone], T0)).await;
    let claimed = store
        .claim_due(T0, 10, 30_000, &Channel::ALL)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(
        (job.message_id.as_str(), job.device_id.as_str(), job.channel),
        ("msg_1", phone.id.as_str(), Channel::Fcm)
    );
    assert_eq!(job.target, Some(DeliveryTarget::Fcm("fcm-pixel".into())));
    assert_eq!(job.envelope.as_deref(), Some(ENVELOPE));
    assert_eq!(job.payload, None);
    assert_eq!(job.priority, Some(Priority::Default));
    assert_eq!(
        (job.attempts, job.created_at, job.expires_at),
        (1, T0, T0 + MINUTE)
    );
    assert!(
        store
            .claim_due(T0 + 1000, 10, 30_000, &Channel::ALL)
            .await
            .unwrap()
            .is_empty(),
        "a leased job is not claimed twice"
    );
    // A lease that has not ended is kept.
    assert_eq!(
        store
            .recover_expired_leases(T0 + 29_999, T0 + 29_999)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .recover_expired_leases(T0 + 30_000, T0 + 31_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.next_due_at(&Channel::ALL).await.unwrap(),
        Some(T0 + 31_000),
        "a recovered job is due at once"
    );
    let again = store
        .claim_due(T0 + 31_000, 10, 30_000, &Channel::ALL)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].job_id, again[0].attempts), (job.job_id, 2));
    complete(store, again[0].lease(), JobOutcome::Delivered, T0 + 32_000).await;
    assert_eq!(states(store, "msg_1", alice.id).await, ["delivered"]);
    assert_eq!(
        store
            .recover_expired_leases(i64::MAX, T0 + 40_000)
            .await
            .unwrap(),
        0,
        "a finished job is never recovered"
    );
}

async fn a_renewed_lease_is_kept_until_its_new_end(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "msg_1", &[&phone], T0)).await;
    accept(store, send(&token, "msg_2", &[&phone], T0)).await;
    let claimed = store.claim_due(T0, 1, 30_000, &Channel::ALL).await.unwrap();
    let (first, first_message) = (claimed[0].lease(), &claimed[0].message_id);
    store.renew_leases(vec![first], T0 + 50_000).await.unwrap();
    let recovered = store.recover_expired_leases(T0 + 49_999, T0 + 49_999);
    assert_eq!(
        recovered.await.unwrap(),
        0,
        "the renewed lease outlives the first"
    );

    let done = vec![(first, JobOutcome::Delivered)];
    store.complete_jobs(done, T0 + 1_000).await.unwrap();
    let second = store
        .claim_due(T0 + 1_000, 1, 30_000, &Channel::ALL)
        .await
        .unwrap()[0]
        .lease();
    // A finished job among the renewed ones stays finished.
    store
        .renew_leases(vec![first, second], T0 + 90_000)
        .await
        .unwrap();
    let recovered = store.recover_expired_leases(T0 + 90_000, T0 + 90_000);
    assert_eq!(recovered.await.unwrap(), 1, "only the leased job");
    assert_eq!(states(store, first_message, alice.id).await, ["delivered"]);
}

async fn claims_take_due_jobs_of_the_given_channels_oldest_first(store: &Store) {
    let devices = [android("pixel"), webpush("browser"), extension("desk")];
    let (_, token, [phone, browser, desk]) = user_with(store, "alice", devices).await;
    accept(store, send(&token, "later", &[&phone], T0 + 5_000)).await;
    accept(store, send(&token, "web", &[&browser], T0 + 1_000)).await;
    accept(store, send(&token, "first", &[&phone], T0)).await;
    accept(store, send(&token, "second", &[&phone], T0 + 2_000)).await;
    accept(store, send(&token, "desk", &[&desk], T0)).await;
    // Not yet due: nothing.
    assert!(claim(store, T0 - 1, 10, &Channel::ALL).await.is_empty());
    // FCM only, at most 2, oldest first; the webpush job and the desktop job are not its.
    let fcm = claim(store, T0 + 5_000, 2, &[Channel::Fcm]).await;
    let ids: Vec<&str> = fcm.iter().map(|j| j.message_id.as_str()).collect();
    assert_eq!(ids, ["first", "second"]);
    let rest = claim(store, T0 + 5_000, 10, &[Channel::Fcm]).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].message_id, "later");
    let web = claim(store, T0 + 5_000, 10, &Channel::ALL).await;
    assert_eq!(web.len(), 1);
    assert_eq!(
        (web[0].message_id.as_str(), web[0].channel),
        ("web", Channel::WebPush)
    );
    // Extension jobs are never claimed: the stream delivers them.
    assert!(
        claim(store, T0 + 10 * MINUTE, 10, &Channel::ALL)
            .await
            .is_empty()
    );
    assert_eq!(stream_of(store, &desk).await.len(), 1);
}

async fn two_claimers_take_disjoint_jobs(s: Story) {
    let store = &s.store;
    let (_, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    const JOBS: usize = 40;
    for i in 0..JOBS {
        accept(store, send(&token, &format!("m{i}"), &[&phone], T0)).await;
    }
    // Two workers (on a shared database: two relays), each on its own handle, racing.
    let first = store.clone();
    let second = s.open(Limits::HOSTED, T0).await;
    let claimer = |store: Store| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&store, T0, 3, &Channel::ALL).await;
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.job_id));
            }
        })
    };
    let (a, b) = tokio::join!(claimer(first), claimer(second));
    let (a, b) = (a.unwrap(), b.unwrap());
    let a_set: HashSet<i64> = a.iter().copied().collect();
    let b_set: HashSet<i64> = b.iter().copied().collect();
    assert_eq!(a_set.len(), a.len(), "no claimer got a job twice");
    assert_eq!(b_set.len(), b.len(), "no claimer got a job twice");
    assert!(a_set.is_disjoint(&b_set), "a job claimed by both");
    assert_eq!(a.len() + b.len(), JOBS, "every due job claimed once");
}

async fn outcomes_finish_or_reschedule_jobs(store: &Store) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    for id in ["ok", "retry", "dead", "expired", "retry_then_expired"] {
        accept(store, send(&token, id, &[&phone], T0)).await;
    }
    let jobs = claim(store, T0, 10, &Channel::ALL).await;
    let job = |id: &str| lease_of(&jobs, id);
    let retry = JobOutcome::RetryAt {
        at_ms: T0 + 5_000,
        error: "http 503".into(),
    };
    store
        .complete_jobs(
            vec![
                (job("ok"), JobOutcome::Delivered),
                (job("retry"), retry.clone()),
                (
                    job("dead"),
                    JobOutcome::DeadLetter {
                        reason: "INVALID_ARGUMENT".into(),
                    },
                ),
                (job("expired"), JobOutcome::Expired),
                (job("retry_then_expired"), retry),
            ],
            T0 + 100,
        )
        .await
        .unwrap();
    let delivery =
        |id: &'static str| async move { status_of(store, id, alice.id).await.deliveries.remove(0) };
    let ok = delivery("ok").await;
    assert_eq!(
        (ok.state.as_str(), ok.attempts, ok.last_error),
        ("delivered", 1, None)
    );
    let retried = delivery("retry").await;
    assert_eq!(
        (
            retried.state.as_str(),
            retried.last_error.as_deref(),
            retried.next_attempt_at
        ),
        ("queued", Some("http 503"), Some(T0 + 5_000))
    );
    let dead = delivery("dead").await;
    assert_eq!(
        (dead.state.as_str(), dead.last_error.as_deref()),
        ("failed", Some("INVALID_ARGUMENT"))
    );
    let expired = delivery("expired").await;
    assert_eq!(
        (expired.state.as_str(), expired.last_error.as_deref()),
        ("expired", Some("ttl_expired"))
    );
    // A retried job is claimable again only when its time comes, counting its attempts.
    assert!(claim(store, T0 + 4_999, 10, &Channel::ALL).await.is_empty());
    let again = claim(store, T0 + 5_000, 10, &Channel::ALL).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|j| j.attempts == 2));
    let later = lease_of(&again, "retry_then_expired");
    complete(store, later, JobOutcome::Expired, T0 + 6_000).await;
    let d = delivery("retry_then_expired").await;
    assert_eq!(
        (d.state.as_str(), d.last_error.as_deref()),
        ("expired", Some("http 503")),
        "expiry keeps the last error, which says why delivery never succeeded"
    );
    // An empty batch is fine.
    store.complete_jobs(vec![], T0 + 7_000).await.unwrap();
}

async fn an_unreachable_device_fails_only_its_open_jobs(store: &Store) {
    let (alice, token, [phone, tablet]) =
        user_with(store, "alice", [android("pixel"), android("tablet")]).await;
    accept(store, send(&token, "done", &[&phone], T0)).await;
    let done = claim(store, T0, 1, &Channel::ALL).await;
    complete(store, done[0].lease(), JobOutcome::Delivered, T0).await;
    for id in ["msg_1", "msg_2"] {
        accept(store, send(&token, id, &[&phone, &tablet], T0 + 1)).await;
    }
    let claimed = claim(store, T0 + 1, 1, &Channel::ALL).await;
    assert_eq!(claimed[0].device_id, phone.id);
    store
        .complete_jobs(
            vec![(
                claimed[0].lease(),
                JobOutcome::DeviceUnreachable {
                    error: "UNREGISTERED".into(),
                },
            )],
            T0 + 2,
        )
        .await
        .unwrap();
    for id in ["msg_1", "msg_2"] {
        let deliveries = status_of(store, id, alice.id).await.deliveries;
        let phone_state = (
            deliveries[0].state.as_str(),
            deliveries[0].last_error.as_deref(),
        );
        assert_eq!(phone_state, ("failed", Some("UNREGISTERED")), "{id}");
        assert_eq!(
            deliveries[1].state.as_str(),
            "queued",
            "{id}: the tablet is untouched"
        );
    }
    assert_eq!(states(store, "done", alice.id).await, ["delivered"]);
    assert!(!store.device(&phone.id).await.unwrap().unwrap().reachable);
    assert_eq!(
        store.reachable_devices_of(alice.id).await.unwrap(),
        vec![tablet.clone()]
    );
    let rest = claim(store, T0 + 3, 10, &Channel::ALL).await;
    assert!(rest.iter().all(|j| j.device_id == tablet.id));
    assert_eq!(rest.len(), 2);
}

/// One wave of outcomes, as the worker commits it: whatever order its jobs finished in, the
/// jobs' own outcomes land first, then a device found unreachable fails what is still open of
/// its jobs, so a job FCM accepted in the same wave stays delivered. Every device with a
/// delivered job is seen at the wave's time; a stale lease in the wave changes nothing.
async fn a_wave_judges_an_unreachable_device_after_the_jobs_delivered_to_it(store: &Store) {
    let (alice, token, [phone, tablet]) =
        user_with(store, "alice", [android("pixel"), android("tablet")]).await;
    for id in ["refused", "accepted", "open"] {
        accept(store, send(&token, id, &[&phone], T0)).await;
    }
    for id in ["tab_1", "tab_2", "tab_3"] {
        accept(store, send(&token, id, &[&tablet], T0 + 1)).await;
    }
    let jobs = claim(store, T0 + 2, 10, &Channel::ALL).await;
    assert_eq!(jobs.len(), 6);
    let job = |id: &str| lease_of(&jobs, id);
    let stale = Lease {
        token: job("tab_3").token + 1,
        ..job("tab_3")
    };
    let wave = vec![
        (
            job("refused"),
            JobOutcome::DeviceUnreachable {
                error: "UNREGISTERED".into(),
            },
        ),
        (job("accepted"), JobOutcome::Delivered),
        (job("tab_1"), JobOutcome::Delivered),
        (
            job("tab_2"),
            JobOutcome::RetryAt {
                at_ms: T0 + 9_000,
                error: "http 503".into(),
            },
        ),
        (stale, JobOutcome::Delivered),
    ];
    store.complete_jobs(wave, T0 + 3).await.unwrap();
    let state = |id: &'static str| async move {
        let d = status_of(store, id, alice.id).await.deliveries.remove(0);
        (d.state.as_str().to_owned(), d.last_error)
    };
    assert_eq!(state("accepted").await, ("delivered".into(), None));
    for id in ["refused", "open"] {
        assert_eq!(
            state(id).await,
            ("failed".into(), Some("UNREGISTERED".into())),
            "{id}"
        );
    }
    assert_eq!(state("tab_1").await, ("delivered".into(), None));
    assert_eq!(
        state("tab_2").await,
        ("queued".into(), Some("http 503".into()))
    );
    assert_eq!(
        state("tab_3").await,
        ("queued".into(), None),
        "a stale lease's outcome is ignored: the job is still leased (shown as queued)"
    );
    let device = |id: String| async move { store.device(&id).await.unwrap().unwrap() };
    let (phone, tablet) = (device(phone.id).await, device(tablet.id).await);
    assert_eq!((phone.reachable, phone.last_seen_at), (false, Some(T0 + 3)));
    assert_eq!(
        (tablet.reachable, tablet.last_seen_at),
        (true, Some(T0 + 3))
    );
}

async fn waiting_jobs_expire_with_their_ttl(store: &Store) {
    let (alice, token, [phone, desk]) =
        user_with(store, "alice", [android("pixel"), extension("desk")]).await;
    accept(store, send(&token, "short", &[&phone, &desk], T0)).await;
    let mut long = send(&token, "long", &[&phone, &desk], T0);
    long.expires_at = T0 + HOUR;
    accept(store, long).await;
    accept(store, send(&token, "leased", &[&phone], T0)).await;
    let leased = store
        .claim_due(T0, 10, 10 * MINUTE, &Channel::ALL)
        .await
        .unwrap();
    // Claim took "short", "long" and "leased" (all due); put the first two back to wait.
    let back: Vec<(Lease, JobOutcome)> = leased
        .iter()
        .filter(|j| j.message_id != "leased")
        .map(|j| {
            (
                j.lease(),
                JobOutcome::RetryAt {
                    at_ms: T0 + 30 * MINUTE,
                    error: "http 503".into(),
                },
            )
        })
        .collect();
    assert_eq!(back.len(), 2);
    store.complete_jobs(back, T0 + 1).await.unwrap();

    assert_eq!(store.expire_jobs(T0 + MINUTE - 1).await.unwrap(), 0);
    // "short" ends at one minute: its queued and its pending job expire; a leased job is its
    // worker's to finish, "long" lives on.
    assert_eq!(store.expire_jobs(T0 + MINUTE).await.unwrap(), 2);
    let short = status_of(store, "short", alice.id).await;
    for d in &short.deliveries {
        assert_eq!(
            (d.state.as_str(), d.last_error.as_deref()),
            ("expired", Some("ttl_expired"))
        );
    }
    assert_eq!(states(store, "long", alice.id).await, ["queued", "queued"]);
    assert_eq!(states(store, "leased", alice.id).await, ["queued"]);
    let events = stream_of(store, &desk).await;
    let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["long"], "an expired event leaves the stream");
    assert_eq!(store.expire_jobs(T0 + MINUTE).await.unwrap(), 0);
}

async fn next_due_at_and_queue_depth_follow_the_queue(store: &Store) {
    assert_eq!(store.next_due_at(&Channel::ALL).await.unwrap(), None);
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    let devices = [android("pixel"), webpush("browser"), extension("desk")];
    let (_, token, [phone, browser, desk]) = user_with(store, "alice", devices).await;
    accept(store, send(&token, "a", &[&phone], T0 + 3_000)).await;
    accept(store, send(&token, "w", &[&browser], T0 + 1_000)).await;
    accept(store, send(&token, "d", &[&desk], T0)).await;
    assert_eq!(
        store.next_due_at(&[Channel::Fcm]).await.unwrap(),
        Some(T0 + 3_000)
    );
    assert_eq!(
        store.next_due_at(&[Channel::WebPush]).await.unwrap(),
        Some(T0 + 1_000)
    );
    assert_eq!(
        store.next_due_at(&Channel::ALL).await.unwrap(),
        Some(T0 + 1_000),
        "desktop jobs wait for their stream, not for a worker"
    );
    // Queued, leased and pending jobs are the depth.
    assert_eq!(store.queue_depth().await.unwrap(), 3);
    let claimed = claim(store, T0 + 1_000, 10, &Channel::ALL).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        store.next_due_at(&Channel::ALL).await.unwrap(),
        Some(T0 + 3_000),
        "a leased job is not due"
    );
    assert_eq!(store.queue_depth().await.unwrap(), 3);
    store
        .complete_jobs(
            vec![(claimed[0].lease(), JobOutcome::Delivered)],
            T0 + 1_001,
        )
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    let events = stream_of(store, &desk).await;
    store
        .ack_stream_events(&desk.id, vec![events[0].seq], T0 + 2_000)
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    assert_eq!(store.next_due_at(&[Channel::WebPush]).await.unwrap(), None);
}

/// A relay that stalled past its lease and comes back with its result finds the job taken
/// over and finished by another: its late outcome lands nowhere.
async fn a_late_outcome_cannot_undo_a_finished_job(store: &Store) {
    let (alice, _, stalled, taken) = stalled_and_taken_over(store).await;
    // The other relay delivers it.
    store
        .complete_jobs(
            vec![(taken[0].lease(), JobOutcome::Delivered)],
            T0 + MINUTE + 1,
        )
        .await
        .unwrap();
    store
        .complete_jobs(
            vec![(
                stalled[0].lease(),
                JobOutcome::RetryAt {
                    at_ms: T0 + 2 * MINUTE,
                    error: "timeout".into(),
                },
            )],
            T0 + MINUTE + 2,
        )
        .await
        .unwrap();
    assert_eq!(states(store, "m1", alice.id).await, ["delivered"]);
}

/// A relay that stalled past its lease comes back while another relay holds the job under a
/// lease of its own: its renewal, its outcome and its verdict on the device all land nowhere,
/// and the new holder's outcome lands.
async fn a_stalled_claim_cannot_touch_the_lease_taken_since(store: &Store) {
    let (alice, phone, stalled, taken) = stalled_and_taken_over(store).await;
    assert_ne!(
        taken[0].lease(),
        stalled[0].lease(),
        "each claim is a new lease"
    );

    // The stalled relay renews: the new holder's lease still ends when it did.
    store
        .renew_leases(vec![stalled[0].lease()], T0 + 10 * MINUTE)
        .await
        .unwrap();
    let recovered = store.recover_expired_leases(T0 + 2 * MINUTE, T0 + 2 * MINUTE);
    assert_eq!(
        recovered.await.unwrap(),
        1,
        "the stale renewal extended nothing"
    );
    let taken = claim(store, T0 + 2 * MINUTE, 1, &Channel::ALL).await;
    assert_eq!(taken.len(), 1);

    // Its outcomes, whichever they are, change nothing while the job is held by another.
    let stale = vec![
        (
            stalled[0].lease(),
            JobOutcome::DeadLetter {
                reason: "INVALID_ARGUMENT".into(),
            },
        ),
        (
            stalled[0].lease(),
            JobOutcome::DeviceUnreachable {
                error: "UNREGISTERED".into(),
            },
        ),
    ];
    store
        .complete_jobs(stale, T0 + 2 * MINUTE + 1)
        .await
        .unwrap();
    assert_eq!(
        states(store, "m1", alice.id).await,
        ["queued"],
        "still leased, shown as waiting"
    );
    let phone_now = store.device(&phone.id).await.unwrap().unwrap();
    assert!(phone_now.reachable, "a stale verdict unpairs nothing");

    store
        .complete_jobs(
            vec![(taken[0].lease(), JobOutcome::Delivered)],
            T0 + 2 * MINUTE + 2,
        )
        .await
        .unwrap();
    assert_eq!(states(store, "m1", alice.id).await, ["delivered"]);
}

/// One message to one phone, claimed by a relay that then stalls past its lease; the lease
/// runs out and another relay puts the job back and claims it. Returns the owner, the phone
/// and the two claims (stalled, taken over).
async fn stalled_and_taken_over(
    store: &Store,
) -> (UserRecord, DeviceRecord, Vec<ClaimedJob>, Vec<ClaimedJob>) {
    let (alice, token, [phone]) = user_with(store, "alice", [android("pixel")]).await;
    accept(store, send(&token, "m1", &[&phone], T0)).await;
    let stalled = claim(store, T0, 1, &Channel::ALL).await;
    store
        .recover_expired_leases(T0 + MINUTE, T0 + MINUTE)
        .await
        .unwrap();
    let taken = claim(store, T0 + MINUTE, 1, &Channel::ALL).await;
    assert_eq!(taken[0].job_id, stalled[0].job_id);
    (alice, phone, stalled, taken)
}
