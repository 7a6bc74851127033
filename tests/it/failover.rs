//! Failover between real `reflecto serve` processes sharing one PostgreSQL database (SPEC §3):
//! while both relays live, each job goes out once; when one is SIGKILLed mid-dispatch the
//! other takes its jobs over once their leases run out, so nothing accepted is lost and the
//! dead relay's in-flight jobs are the only duplicates; and a relay starting up leaves the
//! leases other relays hold alone.
//!
//! Each relay talks to its own fake FCM, so every request the fakes record is attributed to
//! the relay that made it.

use crate::fake_fcm::FakeFcm;
use crate::harness::{
    Api, BIN, Relay, Serving, create_alice_on_postgres, eventually, no_limits, pg_database,
    serve_via,
};
use futures_util::StreamExt;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the tests wait for something that should happen within seconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// One `reflecto serve` process on the database, delivering to its own fake FCM.
struct Node {
    serving: Serving,
    fake: FakeFcm,
    _key: tempfile::NamedTempFile,
    _data: tempfile::TempDir,
}

impl Node {
    async fn start(database: &str, lease_secs: u64) -> Node {
        Node::start_with(database, lease_secs, FakeFcm::start().await)
    }

    /// A relay on `database` with leases of `lease_secs`, delivering to `fake`.
    fn start_with(database: &str, lease_secs: u64, fake: FakeFcm) -> Node {
        let key = fake.key_file();
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--database", database, "--lease-secs"])
            .arg(lease_secs.to_string())
            .args(["--fcm-endpoint", &fake.url, "--fcm-credentials"])
            .arg(key.path());
        // No rate limit gets in the way (serve_via turns off the per-IP ones).
        for layer in ["token-burst", "token-monthly", "receiver-daily"] {
            command.arg(format!("--limit-{layer}")).arg("0");
        }
        let serving = serve_via(&mut command, data.path(), &[("REFLECTO_LOG", "info")]);
        Node {
            serving,
            fake,
            _key: key,
            _data: data,
        }
    }

    /// Freezes (STOP) or thaws (CONT) the process.
    fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.serving.child), signal).unwrap();
    }

    fn url(&self) -> &str {
        &self.serving.url
    }

    /// SIGKILL: the process ends at once, holding whatever it had leased. Its fake stays.
    fn kill(mut self) -> FakeFcm {
        self.serving.child.kill().unwrap();
        self.serving.child.wait().unwrap();
        self.fake
    }
}

/// Sends `count` messages to the android device, message `i` through `relays[i % len]`, a few
/// at a time: the accepted ids in order.
async fn send_spread(relays: &[&str], token: &str, first: usize, count: usize) -> Vec<String> {
    futures_util::stream::iter(first..first + count)
        .map(|i| {
            let url = relays[i % relays.len()];
            async move {
                Api::new(url)
                    .send(
                        token,
                        json!({"message": format!("m{i}"), "device": "pixel"}),
                    )
                    .await
            }
        })
        .buffered(8)
        .collect()
        .await
}

/// The state of every android job, by message id, read straight from the database (the API
/// shows a leased job as `queued`).
async fn job_states(database: &str) -> HashMap<String, String> {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT message_id, state FROM jobs WHERE device_type = 'android'",
            &[],
        )
        .await
        .unwrap();
    drop(client);
    let _ = connection.await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Waits until every one of `ids` is delivered according to the database.
async fn wait_delivered(database: &str, ids: &[String]) {
    eventually("every job delivered", PATIENCE, || async {
        let states = job_states(database).await;
        let open: Vec<_> = ids
            .iter()
            .filter(|id| states.get(*id).map(String::as_str) != Some("delivered"))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} of {} never delivered, e.g. {} in state {:?}",
            open.len(),
            ids.len(),
            open[0],
            states.get(open[0])
        ))
    })
    .await;
}

/// A fresh database with alice (see `create_alice`) on it: (its URL, alice's token); `None`
/// when the test is skipped for want of PostgreSQL.
fn alice_on_a_new_database() -> Option<(String, String)> {
    let database = pg_database()?;
    let (token, _, _) = create_alice_on_postgres(&database);
    Some((database, token))
}

/// Requests per message id over every fake.
fn merged_counts(fakes: &[&FakeFcm]) -> HashMap<String, usize> {
    let mut total = HashMap::new();
    for fake in fakes {
        for (id, n) in fake.count_by_id() {
            *total.entry(id).or_default() += n;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn two_live_relays_deliver_each_message_once() {
    const SENDS: usize = 200;
    let Some((database, token)) = alice_on_a_new_database() else {
        return;
    };
    let a = Node::start(&database, 2).await;
    let b = Node::start(&database, 2).await;

    let accepted = send_spread(&[a.url(), b.url()], &token, 0, SENDS).await;
    wait_delivered(&database, &accepted).await;

    let counts = merged_counts(&[&a.fake, &b.fake]);
    let (by_a, by_b) = (a.fake.sends().len(), b.fake.sends().len());
    println!("{SENDS} sends over two relays: relay A delivered {by_a}, relay B {by_b}");
    for id in &accepted {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id} reached FCM {:?} times",
            counts.get(id)
        );
    }
    assert_eq!(
        counts.len(),
        SENDS,
        "FCM received only accepted messages: {counts:?}"
    );
    assert_eq!(by_a + by_b, SENDS, "no request was repeated");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_dispatch_on_a_shared_database_loses_nothing() {
    const BEFORE: usize = 40;
    const AFTER: usize = 80;
    let Some((database, token)) = alice_on_a_new_database() else {
        return;
    };
    let a = Node::start(&database, 2).await;
    let b = Node::start(&database, 2).await;
    // FCM answers slowly: jobs stay leased while their requests are out.
    a.fake.delay_every_send(Duration::from_millis(50));
    b.fake.delay_every_send(Duration::from_millis(50));

    // Both relays at work; what relay A delivers now it records before it dies.
    let mut accepted = send_spread(&[a.url(), b.url()], &token, 0, BEFORE).await;
    wait_delivered(&database, &accepted).await;

    // The next jobs are accepted while both relays are frozen (the in-process relay has no
    // delivery worker), so relay A, thawed first, claims them all in one round. FCM does not
    // answer relay A any more: it is killed holding their leases, its requests out.
    let api = Relay::start_on_postgres(&database, no_limits()).await;
    a.signal(Signal::STOP);
    b.signal(Signal::STOP);
    let second = send_spread(&[&api.url], &token, BEFORE, AFTER).await;
    accepted.extend(second.iter().cloned());
    a.fake.hold();
    a.signal(Signal::CONT);
    eventually("relay A to claim the jobs", PATIENCE, || async {
        a.fake.in_flight() > 0
            && !job_states(&database)
                .await
                .iter()
                .any(|(id, state)| state == "queued" && second.contains(id))
    })
    .await;
    b.signal(Signal::CONT);
    let fake_a = a.kill();
    let seen_by_a: HashSet<String> = fake_a.count_by_id().into_keys().collect();
    let states = job_states(&database).await;
    // A job delivered at this point was recorded by relay A, unless relay B already took it
    // over (its lease ran out before this look): those B has sent are not A's records.
    let seen_by_b: HashSet<String> = b.fake.count_by_id().into_keys().collect();
    let recorded_by_a: HashSet<String> = seen_by_a
        .iter()
        .filter(|id| states.get(*id).map(String::as_str) == Some("delivered"))
        .filter(|id| !seen_by_b.contains(*id))
        .cloned()
        .collect();
    let in_flight_at_kill: HashSet<&String> = seen_by_a.difference(&recorded_by_a).collect();
    assert!(
        !in_flight_at_kill.is_empty(),
        "the kill must land while relay A has requests out"
    );
    fake_a.release();

    let started = Instant::now();
    wait_delivered(&database, &accepted).await;
    println!(
        "relay B finished relay A's work {:?} after the kill (lease 2 s)",
        started.elapsed()
    );

    let counts = merged_counts(&[&fake_a, &b.fake]);
    for id in &accepted {
        assert!(counts.get(id).is_some_and(|n| *n >= 1), "{id} was lost");
    }
    assert_eq!(
        counts.len(),
        accepted.len(),
        "only accepted messages went out"
    );
    let duplicates: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    println!(
        "{} accepted; relay A had {} requests in flight when killed; {} messages reached FCM twice",
        accepted.len(),
        in_flight_at_kill.len(),
        duplicates.len()
    );
    for id in &duplicates {
        assert_eq!(counts[*id], 2, "{id} went out more than twice");
        assert!(
            in_flight_at_kill.contains(id),
            "{id} was delivered twice but was not in flight on the killed relay"
        );
    }
    assert!(duplicates.len() <= in_flight_at_kill.len());

    for id in &accepted {
        let view = Api::new(b.url()).status(&token, id).await;
        assert_eq!(
            view["deliveries"][0]["state"], "delivered",
            "{id} on relay B: {view}"
        );
    }
}
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_starting_up_leaves_live_leases_of_other_relays_alone() {
    const HELD: usize = 5;
    let Some((database, token)) = alice_on_a_new_database() else {
        return;
    };
    // Relay A has run on this database before.
    let fake_a = Node::start(&database, 2).await.kill();

    // The jobs are accepted before relay B runs (the in-process relay has no delivery
    // worker), so relay B's first round claims them all, under a 30 s lease: FCM has their
    // requests and does not answer.
    let api = Relay::start_on_postgres(&database, no_limits()).await;
    let held = send_spread(&[&api.url], &token, 0, HELD).await;
    let fake_b = FakeFcm::start().await;
    fake_b.hold();
    let b = Node::start_with(&database, 30, fake_b);
    eventually("relay B to have every job in flight", PATIENCE, || async {
        b.fake.in_flight() == HELD
    })
    .await;

    // Relay A comes back. Relay B's worker is busy with its round, so the probe accepted next
    // is relay A's to deliver: once it has, relay A's start-up is over.
    let a = Node::start_with(&database, 2, fake_a);
    let probe = send_spread(&[a.url()], &token, HELD, 1).await;
    wait_delivered(&database, &probe).await;
    assert_eq!(a.fake.count_by_id().get(&probe[0]), Some(&1));

    let states = job_states(&database).await;
    for id in &held {
        assert_eq!(
            states[id], "leased",
            "{id} is still relay B's after relay A started"
        );
        assert!(
            !a.fake.count_by_id().contains_key(id),
            "relay A sent {id}, which relay B holds"
        );
    }

    b.fake.release();
    wait_delivered(&database, &held).await;
    let counts = merged_counts(&[&a.fake, &b.fake]);
    for id in held.iter().chain(&probe) {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "{id} reached FCM {:?} times",
            counts.get(id)
        );
    }
}

/// Regression: a relay's lease ran out while its FCM request was still unanswered (a slow FCM,
/// or a round of two waves of requests lasting longer than the lease), and another, live relay
/// sent the job again. A relay now renews the leases of the round it is working on.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_fcm_answer_outlasting_the_lease_is_not_sent_again_by_another_relay() {
    let Some((database, token)) = alice_on_a_new_database() else {
        return;
    };
    let fake_a = FakeFcm::start().await;
    fake_a.hold();
    let a = Node::start_with(&database, 2, fake_a);
    let id = Api::new(a.url())
        .send(&token, json!({"message": "slow", "device": "pixel"}))
        .await;
    eventually("relay A's request", PATIENCE, || async {
        a.fake.in_flight() == 1
    })
    .await;
    let b = Node::start(&database, 2).await;

    // Long enough for the 2 s lease taken before the request to run out twice over, and for
    // relay B to sweep (every second) after that.
    // Polls on purpose, not `eventually`: this proves that nothing happens for 5 s.
    let claimed = Instant::now();
    while claimed.elapsed() < Duration::from_secs(5) {
        assert!(
            b.fake.count_by_id().is_empty(),
            "relay B sent the job relay A is still sending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job_states(&database).await[&id], "leased");

    a.fake.release();
    wait_delivered(&database, std::slice::from_ref(&id)).await;
    assert!(b.fake.count_by_id().is_empty(), "relay B sent it late");
    assert_eq!(a.fake.count_by_id()[&id], 1);
}
