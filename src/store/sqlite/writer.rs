//! Group commit: one thread owns the write connection and commits whatever work has queued up
//! in one transaction, each piece inside its own savepoint. Throughput comes from sharing one
//! commit across concurrent requests; a failing piece rolls back alone.
//!
//! A piece that may run twice ([`Writer::write_replayable`]: the delivery queue's claims,
//! outcomes and renewals) runs first, without a savepoint: a savepoint copies every page the
//! piece touches into the statement journal, a tenth of the writer's time under delivery load.
//! If one of them fails, the transaction is rolled back and they all run again, each in its
//! savepoint, so the failure still rolls back alone.
//!
//! The writer also knows whether writes are failing (disk full, I/O error): every batch
//! records it in [`WriteHealth`], which `/health/ready` reports and which clears by itself at
//! the first batch that commits again.

use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Sent back after the batch's COMMIT, so a caller never sees success before durability.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs its work on the connection, or with `None` (the batch could not start) only produces
/// the reply that carries the batch's failure.
type Once = Box<dyn FnOnce(Option<&Connection>) -> (OpStatus, Reply) + Send>;

/// One piece of a batch.
enum Op {
    Once(Once),
    Replay(Box<dyn Replay>),
}

/// Work that may run more than once in a batch: it changes nothing outside the connection.
trait Replay: Send {
    /// Runs the work (again), keeping its result for the reply.
    fn run(&mut self, conn: &Connection) -> OpStatus;
    /// Answers with the last run's result once the batch committed, or with the batch's failure.
    fn reply(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Replayable<R, F> {
    work: F,
    result: Option<Result<R, StoreError>>,
    tx: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Replay for Replayable<R, F>
where
    R: Send,
    F: FnMut(&Connection) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> OpStatus {
        let result = (self.work)(conn);
        let status = status_of(&result);
        self.result = Some(result);
        status
    }

    fn reply(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.tx.send(result);
    }
}

fn status_of<R>(result: &Result<R, StoreError>) -> OpStatus {
    match result {
        Ok(_) => OpStatus::Ok,
        Err(e) if e.is_fault() => OpStatus::Fault,
        Err(_) => OpStatus::Refused,
    }
}

/// How one op's work ended: a fault (the store cannot write) differs from a refusal
/// (not found, conflict), which says nothing about the store's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpStatus {
    Ok,
    Refused,
    Fault,
}

const MAX_BATCH: usize = 512;

/// Whether writes are failing, and the fault-injection switch the writer consults before
/// each batch.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failing: AtomicBool,
    injected: AtomicBool,
}

impl WriteHealth {
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    pub fn set_injected(&self, on: bool) {
        self.injected.store(on, Ordering::SeqCst);
    }

    fn injected(&self) -> bool {
        self.injected.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct Writer {
    ops: mpsc::Sender<Op>,
    health: Arc<WriteHealth>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> Writer {
        let (ops, rx) = mpsc::channel::<Op>();
        let health = Arc::new(WriteHealth::default());
        let shared = health.clone();
        std::thread::Builder::new()
            .name("reflecto-store-writer".into())
            .spawn(move || run(conn, rx, &shared))
            .expect("spawning the store writer thread");
        Writer { ops, health }
    }

    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    fn submit<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let op: Once = Box::new(move |conn| {
            let Some(conn) = conn else {
                let reply: Reply = Box::new(move |batch| {
                    let _ = tx.send(Err(batch.err().unwrap_or(StoreError::Closed)));
                });
                return (OpStatus::Fault, reply);
            };
            let result = work(conn);
            let status = status_of(&result);
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (status, reply)
        });
        // A send error means the writer thread is gone; the dropped `tx` reports it below.
        let _ = self.ops.send(Op::Once(op));
        rx
    }

    /// Runs `work` in the next group commit and waits for the commit.
    pub async fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Closed))
    }

    /// As [`Writer::write`], for work that may run more than once before the commit (see the
    /// module's note): it must change nothing but the database, and each run must start from
    /// what it captured (so it reads its inputs, never moves them out).
    pub async fn write_replayable<R: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit_replayable(work)
            .await
            .unwrap_or_else(|_| Err(StoreError::Closed))
    }

    fn submit_replayable<R: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let op = Replayable {
            work,
            result: None,
            tx,
        };
        // A send error means the writer thread is gone; the dropped `tx` reports it.
        let _ = self.ops.send(Op::Replay(Box::new(op)));
        rx
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Op>, health: &WriteHealth) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut replays = Vec::new();
        let mut onces = Vec::new();
        for op in batch {
            match op {
                Op::Once(op) => onces.push(op),
                Op::Replay(op) => replays.push(op),
            }
        }
        let (outcome, replies, fault) = if health.injected() {
            let e = StoreError::Unavailable("injected write fault".into());
            let replies = onces.into_iter().map(|op| op(None).1).collect();
            (Err(e), replies, true)
        } else {
            commit_batch(&conn, &mut replays, onces)
        };
        health.failing.store(fault, Ordering::SeqCst);
        for reply in replies {
            reply(outcome.clone());
        }
        for op in replays {
            op.reply(outcome.clone());
        }
    }
}

type Replies = Vec<Reply>;

/// Commits the batch: the replayable ops first, then the others, each in its savepoint.
/// Returns the commit's outcome, the once-ops' replies (the replayable ones answer from their
/// own result), and whether the store showed a fault (the batch or one of its ops could not
/// write).
fn commit_batch(
    conn: &Connection,
    replays: &mut [Box<dyn Replay>],
    onces: Vec<Once>,
) -> (Result<(), StoreError>, Replies, bool) {
    let mut replies = Vec::with_capacity(onces.len());
    let mut ops = onces.into_iter();
    let failed = |e: rusqlite::Error, replies: &mut Replies, rest: std::vec::IntoIter<Once>| {
        let e = StoreError::from(e);
        // The ops that never ran still get an answer: the batch's failure.
        replies.extend(rest.map(|op| op(None).1));
        (Err(e), std::mem::take(replies), true)
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return failed(e, &mut replies, ops);
    }
    let mut fault = match run_replays(conn, replays) {
        Ok(fault) => fault,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return failed(e, &mut replies, ops);
        }
    };
    while let Some(op) = ops.next() {
        let guarded = in_savepoint(conn, |conn| {
            let (status, reply) = op(Some(conn));
            replies.push(reply);
            status
        });
        match guarded {
            Ok(status) => fault |= status == OpStatus::Fault,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return failed(e, &mut replies, ops);
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => (Ok(()), replies, fault),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            failed(e, &mut replies, ops)
        }
    }
}

/// Runs the replayable ops in the open transaction, without savepoints while they all
/// succeed; after the first that does not, rolls the transaction back and runs them all again,
/// each in its savepoint. Whether one showed a fault.
fn run_replays(conn: &Connection, replays: &mut [Box<dyn Replay>]) -> rusqlite::Result<bool> {
    if replays.iter_mut().all(|op| op.run(conn) == OpStatus::Ok) {
        return Ok(false);
    }
    conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")?;
    let mut fault = false;
    for op in replays.iter_mut() {
        fault |= in_savepoint(conn, |conn| op.run(conn))? == OpStatus::Fault;
    }
    Ok(fault)
}

/// Runs `work` in a savepoint, kept when it succeeds and rolled back when it does not.
fn in_savepoint(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> OpStatus,
) -> rusqlite::Result<OpStatus> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    let status = work(conn);
    if status == OpStatus::Ok {
        conn.prepare_cached("RELEASE op")?.execute([])?;
    } else {
        conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        Writer::spawn(conn)
    }

    fn insert(c: &Connection, n: i64) -> Result<(), StoreError> {
        c.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
        Ok(())
    }

    /// Holds the writer thread in a batch of its own until the returned sender is dropped, so
    /// everything submitted meanwhile is committed as the next batch, together.
    fn hold(writer: &Writer) -> mpsc::Sender<()> {
        let (release, held) = mpsc::channel::<()>();
        drop(writer.submit(move |_| {
            let _ = held.recv();
            Ok(())
        }));
        release
    }

    async fn rows(writer: &Writer) -> Vec<i64> {
        writer
            .write(|c| {
                let mut stmt = c.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_replayable_op_rolls_back_alone_and_runs_the_others_again() {
        let writer = writer();
        let release = hold(&writer);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let ok = writer.submit_replayable(move |c| {
            counted.fetch_add(1, Ordering::SeqCst);
            insert(c, 1)
        });
        // Writes, then fails: its row must not be committed with the others.
        let refused = writer.submit_replayable(|c| {
            insert(c, 2)?;
            Err::<(), _>(StoreError::NotFound("the thing".into()))
        });
        let once = writer.submit(|c| insert(c, 3));
        drop(release);
        let (ok, refused, once) = (
            ok.await.unwrap(),
            refused.await.unwrap(),
            once.await.unwrap(),
        );
        assert!(ok.is_ok() && once.is_ok(), "{ok:?} {once:?}");
        assert!(
            matches!(refused, Err(StoreError::NotFound(_))),
            "{refused:?}"
        );
        assert_eq!(rows(&writer).await, vec![1, 3]);
        // The first run was rolled back with the failing op's writes, then run again.
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn replayable_ops_that_succeed_run_once_in_the_batch_of_the_others() {
        let writer = writer();
        let release = hold(&writer);
        let runs = Arc::new(AtomicUsize::new(0));
        let pending: Vec<_> = (10..13)
            .map(|n| {
                let runs = runs.clone();
                writer.submit_replayable(move |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    insert(c, n)
                })
            })
            .collect();
        let once = writer.submit(|c| insert(c, 20));
        drop(release);
        for result in pending {
            result.await.unwrap().unwrap();
        }
        once.await.unwrap().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(rows(&writer).await, vec![10, 11, 12, 20]);
    }

    #[tokio::test]
    async fn an_injected_fault_answers_replayable_ops_without_running_them() {
        let writer = writer();
        writer.health().set_injected(true);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let failed = writer
            .write_replayable(move |c| {
                counted.fetch_add(1, Ordering::SeqCst);
                insert(c, 1)
            })
            .await;
        assert!(
            matches!(failed, Err(StoreError::Unavailable(_))),
            "{failed:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(writer.health().failing());
        writer.health().set_injected(false);
        assert_eq!(rows(&writer).await, Vec::<i64>::new());
    }
}
