//! What only the SQLite backend promises, on real files in temp dirs: the file never holds a
//! secret, hot statements stay prepared, and `admin backup` makes a private standalone copy.
//! Behaviour both backends share is in the conformance story (`store/story/`).

use super::*;
use crate::api::DeviceType;
use crate::store::contract::*;
use crate::store::model::*;

const T0: i64 = 1_795_000_000_000;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Limits::HOSTED, T0).unwrap();
    (dir, store)
}

fn device(label: &str, device_type: DeviceType) -> NewDevice {
    NewDevice {
        label: label.into(),
        device_type,
        fcm_token: (device_type == DeviceType::Android).then(|| format!("fcm-{label}")),
        public_key: None,
        webpush: None,
    }
}

async fn token(store: &SqliteStore) -> crate::api::token::Secret {
    let new = NewToken::plain("alice", "ci");
    let owner = store.user_by_name("alice").await.unwrap();
    let issued = crate::store::tokens::issue(new, owner, T0);
    store
        .insert_token(&issued.record, &issued.hash)
        .await
        .unwrap();
    issued.secret
}

#[tokio::test]
async fn secrets_never_reach_the_database_file() {
    let (dir, store) = store();
    store.add_user("alice", T0).await.unwrap();
    let secret = token(&store).await;
    let desk = store
        .add_device("alice", device("desk", DeviceType::Extension), T0)
        .await
        .unwrap();
    let credential = desk.credential;
    store.create_pair_code("alice", T0).await.unwrap();
    drop(store);
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default();
    // (Pairing codes are stored hashed too, but six digits may occur in any file by chance.)
    for needle in [secret.expose(), credential.expose()] {
        let needle = needle.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        assert!(!wal.windows(needle.len()).any(|w| w == needle));
    }
}

/// The values of a statement's `i`th run.
type Args = fn(i64) -> Vec<rusqlite::types::Value>;

/// How often each statement was re-prepared over five runs with different values.
fn re_prepares(
    c: &rusqlite::Connection,
    statements: &[(&str, Args)],
) -> Result<Vec<(String, i32)>> {
    let mut counts = Vec::new();
    for (sql, args) in statements {
        let mut stmt = c.prepare_cached(sql)?;
        for i in 0..5 {
            let mut rows = stmt.query(rusqlite::params_from_iter(args(i)))?;
            while rows.next()?.is_some() {}
        }
        counts.push((
            sql.to_string(),
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
        ));
    }
    Ok(counts)
}

/// Regression: with the bundled SQLite's STAT4, the hot lookups written as JOINs were
/// re-prepared on every execution (a third of the relay's CPU under load).
#[tokio::test]
async fn hot_statements_are_not_re_prepared() {
    let (_d, store) = store();
    store.add_user("alice", T0).await.unwrap();
    token(&store).await;
    store
        .add_device("alice", device("pixel", DeviceType::Android), T0)
        .await
        .unwrap();
    // STREAM_SQL and the claim: `the_claim_and_the_stream_read_are_not_re_prepared`.
    let cases: [(&str, Args); 4] = [
        (users_tokens::AUTH_SQL, |i| vec![vec![i as u8; 32].into()]),
        (devices_pairing::REACHABLE_SQL, |i| vec![(1 + i % 2).into()]),
        (queue::CLAIMED_MESSAGE_SQL, |i| {
            vec![format!("msg_{i}").into()]
        }),
        (queue::CLAIMED_DEVICE_SQL, |i| {
            vec![format!("dev_{i}").into()]
        }),
    ];
    for (sql, count) in store.read(|c| re_prepares(c, &cases)).unwrap() {
        assert_eq!(count, 0, "{sql}");
    }
}

/// A store whose only layer is a token burst of `burst`, and a way to make a send of alice's
/// token to her phone: the accept tests' opening.
async fn burst_of(burst: u64) -> (tempfile::TempDir, SqliteStore, impl Fn(&str) -> NewSend) {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        token_burst: burst,
        token_monthly: 0,
        receiver_daily: 0,
        ip_minute: 0,
        ip_hour: 0,
    };
    let store = SqliteStore::open(dir.path(), limits, T0).unwrap();
    let owner = store.add_user("alice", T0).await.unwrap();
    let issued = crate::store::tokens::issue(NewToken::plain("alice", "ci"), owner, T0);
    store
        .insert_token(&issued.record, &issued.hash)
        .await
        .unwrap();
    let phone = store
        .add_device("alice", device("pixel", DeviceType::Android), T0)
        .await
        .unwrap()
        .device;
    let send = move |id: &str| crate::store::story::send(&issued.record, id, &[&phone], T0);
    (dir, store, send)
}

/// An accept is a replayable writer piece: when another piece of its batch fails, the batch
/// is rolled back and the accept runs again. It must then be committed once and charged once.
#[tokio::test]
async fn an_accept_run_again_in_its_batch_is_committed_and_charged_once() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let (_dir, store, send) = burst_of(2).await;
    let burst_left = |outcome: AcceptOutcome| match outcome {
        AcceptOutcome::Accepted(statuses) => statuses[0].remaining,
        other => panic!("not accepted: {other:?}"),
    };

    // The accept, then a piece that fails, both queued behind a held batch: the failure rolls
    // back the accept's first run, and the accept runs again in its own savepoint.
    let release = store.writer().hold();
    let mut cx = Context::from_waker(Waker::noop());
    let mut accept = Box::pin(store.accept_send(send("msg_again")));
    assert!(matches!(accept.as_mut().poll(&mut cx), Poll::Pending));
    let mut failing = Box::pin(
        store
            .writer()
            .write_replayable(|_| Err::<(), _>(StoreError::NotFound("the thing".into()))),
    );
    assert!(matches!(failing.as_mut().poll(&mut cx), Poll::Pending));
    drop(release);
    assert_eq!(burst_left(accept.await.unwrap()), 1, "charged once");
    assert!(matches!(failing.await, Err(StoreError::NotFound(_))));

    // One message row, and one charge: the next send takes the burst's last place.
    let rows: i64 = store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(
        burst_left(store.accept_send(send("msg_next")).await.unwrap()),
        0
    );
    assert!(matches!(
        store.accept_send(send("msg_refused")).await.unwrap(),
        AcceptOutcome::Refused(_)
    ));
}

/// Regression: an accept whose batch failed at COMMIT kept its rate-limit charge in memory
/// until the relay restarted, though none of its rows was kept.
#[tokio::test]
async fn an_accept_whose_commit_fails_gives_its_charge_back() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let (_dir, store, send) = burst_of(1).await;

    // The accept, then a piece whose row breaks a deferred foreign key, queued behind a held
    // batch: both run, and the batch's COMMIT fails.
    let release = store.writer().hold();
    let mut cx = Context::from_waker(Waker::noop());
    let mut accept = Box::pin(store.accept_send(send("msg_lost")));
    assert!(matches!(accept.as_mut().poll(&mut cx), Poll::Pending));
    let mut breaking = Box::pin(store.writer().write(|c| {
        c.execute_batch(
            "PRAGMA defer_foreign_keys = ON;
             INSERT INTO pairing_codes (code_hash, user_id, expires_at) VALUES (x'00', 999, 0);",
        )?;
        Ok(())
    }));
    assert!(matches!(breaking.as_mut().poll(&mut cx), Poll::Pending));
    drop(release);
    assert!(accept.await.is_err(), "the batch did not commit");
    assert!(breaking.await.is_err());

    // Nothing of the accept was kept, and the burst's one place is free again.
    let rows: i64 = store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(rows, 0);
    assert!(matches!(
        store.accept_send(send("msg_kept")).await.unwrap(),
        AcceptOutcome::Accepted(_)
    ));
}

/// Regression: the claim (writer) and an extension's stream read (reader) were re-prepared at
/// every run. Matching a partial index's WHERE term (`state = 'queued'`) against a query's
/// terms made SQLite note every bound value it compared along the way, so a new `now` or
/// `after_seq` expired the statement (5% of the writer's time in an FCM drain, and a
/// re-prepare on the path of every send to FCM at light load).
#[tokio::test]
async fn the_claim_and_the_stream_read_are_not_re_prepared() {
    let (_d, store) = store();
    let claim = queue::claim_sql(&[Channel::Fcm, Channel::WebPush]);
    let claims = store
        .writer()
        .write(move |c| {
            re_prepares(
                c,
                &[(claim.as_str(), |i| {
                    vec![(T0 + i).into(), (T0 + i + 60_000).into(), 128.into()]
                })],
            )
        })
        .await
        .unwrap();
    let stream = store
        .read(|c| {
            re_prepares(
                c,
                &[(streams::STREAM_SQL, |i| {
                    vec![format!("dev_{}", i % 2).into(), i.into(), 100.into()]
                })],
            )
        })
        .unwrap();
    for (sql, count) in claims.into_iter().chain(stream) {
        assert_eq!(count, 0, "{sql}");
    }
}

/// Regression: a keyed send (every Alertmanager hook) looked for the jobs to supersede through
/// the state index, scanning every queued job of the relay per send, not the key's messages.
#[tokio::test]
async fn superseding_by_key_reads_the_keys_jobs_not_the_queue() {
    let (_d, store) = store();
    store
        .read(|c| {
            let plan: Vec<String> = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN {}",
                    sends_limits::SUPERSEDE_SQL
                ))?
                .query_map(rusqlite::params![1, "k", 0], |r| r.get::<_, String>(3))?
                .collect::<Result<_, _>>()?;
            assert!(
                plan.iter()
                    .any(|step| step.contains("jobs USING INDEX jobs_message")),
                "{plan:?}"
            );
            assert!(
                plan.iter().any(|step| step.contains("messages_user_key")),
                "{plan:?}"
            );
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn backup_is_a_standalone_private_copy() {
    let (_d, store) = store();
    store.add_user("alice", T0).await.unwrap();
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
    let copy = SqliteStore::open(restored.path(), Limits::HOSTED, T0).unwrap();
    assert_eq!(copy.list_users().await.unwrap()[0].name, "alice");
}

/// A read that grows with the data is marked blocking on the relay's multi-thread runtime and
/// runs inline on a current-thread one (the CLI): both answer the same.
async fn a_scan_lists(name: &str) {
    let (_d, store) = store();
    store.add_user(name, T0).await.unwrap();
    let users = store.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_answers_on_a_multi_thread_runtime() {
    a_scan_lists("alice").await;
}

/// The steps of `sql`'s query plan, which must name `index`.
fn plan_through(conn: &rusqlite::Connection, sql: &str, index: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    assert!(
        plan.iter().any(|step| step.contains(index)),
        "{sql}: not through {index}: {plan:?}"
    );
    plan
}

/// The queries by a message's age read `messages_page(created_at, id)` since schema migration
/// 13 dropped `messages_created(created_at)`, which repeated its head; the receiver sends are
/// read by time through `receiver_sends_at`. None scans its table or sorts.
#[test]
fn queries_by_age_use_their_indexes() {
    let (dir, _store) = store();
    let conn = rusqlite::Connection::open(dir.path().join("reflecto.db")).unwrap();
    // Planned as the relay's own connections plan them.
    super::schema::stable_plans(&conn).unwrap();
    for (sql, index) in [
        (super::admin::MESSAGES_SINCE_SQL, "messages_page"),
        (super::upkeep::PRUNE_FINISHED_SQL, "messages_page"),
        (super::upkeep::PRUNE_RECEIVER_SENDS_SQL, "receiver_sends_at"),
        (
            super::sends_limits::RECEIVER_SENDS_SINCE_SQL,
            "receiver_sends_at",
        ),
    ] {
        let plan = plan_through(&conn, sql, index);
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN m")
                || step.starts_with("SCAN receiver_sends")
                || step.contains("TEMP B-TREE")),
            "{sql}: scans or sorts its table: {plan:?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_scan_answers_on_a_current_thread_runtime() {
    a_scan_lists("bob").await;
}

/// Each hot job query and the counts of waiting jobs, with the partial index (schema
/// migration 12) that must serve it. SQLite uses a partial index only for a query that
/// repeats its WHERE term, and picks between indexes by rule: an index on `(state, …)` once
/// made the claim sort every queued job (bench/RESULTS.md), and a count that misses its index
/// scans the whole table (`SCAN jobs`; a scan of a partial index reads only its jobs).
#[test]
fn job_queries_use_their_partial_indexes_and_never_scan_the_jobs() {
    let (dir, _store) = store();
    let conn = rusqlite::Connection::open(dir.path().join("reflecto.db")).unwrap();
    // Planned as the relay's own connections plan them.
    super::schema::stable_plans(&conn).unwrap();
    let both = [Channel::Fcm, Channel::WebPush];
    let planned: Vec<(String, &str)> = vec![
        (super::queue::claim_sql(&[Channel::Fcm]), "jobs_due"),
        (super::queue::claim_sql(&both), "jobs_due"),
        (super::queue::next_due_sql(&both), "jobs_due"),
        (super::queue::RECOVER_SQL.into(), "jobs_lease"),
        (super::queue::EXPIRE_SQL.into(), "jobs_expiry"),
        (super::queue::QUEUE_DEPTH_SQL.into(), "jobs_expiry"),
        (super::queue::QUEUE_DEPTH_SQL.into(), "jobs_lease"),
        (super::admin::QUEUED_SQL.into(), "jobs_due"),
        (super::admin::LEASED_SQL.into(), "jobs_lease"),
        (super::admin::PENDING_SQL.into(), "jobs_expiry"),
        (super::admin::FINAL_SINCE_SQL.into(), "jobs_done"),
    ];
    for (sql, index) in planned {
        let plan = plan_through(&conn, &sql, index);
        assert!(
            !plan
                .iter()
                .any(|step| step == "SCAN jobs" || step.contains("TEMP B-TREE")),
            "{sql}: scans or sorts the jobs: {plan:?}"
        );
    }
}
