//! Group commit: one thread owns the write connection and commits whatever work has queued up
//! in one transaction, each piece inside its own savepoint. Throughput comes from sharing one
//! commit across concurrent requests; a failing piece rolls back alone. Every piece is answered
//! after the batch's COMMIT, so a caller never sees success before durability.
//!
//! A piece that may run twice ([`Writer::write_replayable`]: accepted sends, and the delivery
//! queue's claims, outcomes and renewals) runs first, without a savepoint: a savepoint copies
//! every page the piece touches into the statement journal, a tenth of the writer's time under
//! delivery load and about as much of its time per send (`bench/RESULTS.md`, seventh pass).
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

/// One piece of a batch: its work on the write connection and the answer owed to its caller.
trait Piece: Send {
    /// Whether the work may run again: such pieces run first, without a savepoint.
    fn replayable(&self) -> bool;
    /// Runs the work, keeping its result for the answer.
    fn run(&mut self, conn: &Connection) -> OpStatus;
    /// Answers with the last run's result once the batch committed, or with the batch's
    /// failure (also what a piece that never ran answers).
    fn reply(self: Box<Self>, commit: Result<(), StoreError>);
}

/// What a piece runs: [`Once`] or [`Again`].
trait Work<R>: Send {
    const REPLAYABLE: bool;
    fn call(&mut self, conn: &Connection) -> Result<R, StoreError>;
}

/// Work that runs once ([`Writer::write`]); a batch never runs a once-piece twice.
struct Once<F>(Option<F>);

impl<R, F: FnOnce(&Connection) -> Result<R, StoreError> + Send> Work<R> for Once<F> {
    const REPLAYABLE: bool = false;
    fn call(&mut self, conn: &Connection) -> Result<R, StoreError> {
        let work = self.0.take().expect("a once-piece runs once");
        work(conn)
    }
}

/// Work that may run again ([`Writer::write_replayable`]).
struct Again<F>(F);

impl<R, F: FnMut(&Connection) -> Result<R, StoreError> + Send> Work<R> for Again<F> {
    const REPLAYABLE: bool = true;
    fn call(&mut self, conn: &Connection) -> Result<R, StoreError> {
        (self.0)(conn)
    }
}

struct Pending<R, W> {
    work: W,
    result: Option<Result<R, StoreError>>,
    tx: oneshot::Sender<Result<R, StoreError>>,
}

impl<R: Send, W: Work<R>> Piece for Pending<R, W> {
    fn replayable(&self) -> bool {
        W::REPLAYABLE
    }

    fn run(&mut self, conn: &Connection) -> OpStatus {
        let result = self.work.call(conn);
        let status = match &result {
            Ok(_) => OpStatus::Ok,
            Err(e) if e.is_fault() => OpStatus::Fault,
            Err(_) => OpStatus::Refused,
        };
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

/// How one piece's work ended: a fault (the store cannot write) differs from a refusal
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
    pieces: mpsc::Sender<Box<dyn Piece>>,
    health: Arc<WriteHealth>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> Writer {
        let (pieces, rx) = mpsc::channel::<Box<dyn Piece>>();
        let health = Arc::new(WriteHealth::default());
        let shared = health.clone();
        std::thread::Builder::new()
            .name("reflecto-store-writer".into())
            .spawn(move || run(conn, rx, &shared))
            .expect("spawning the store writer thread");
        Writer { pieces, health }
    }

    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    fn submit<R: Send + 'static>(
        &self,
        work: impl Work<R> + 'static,
    ) -> oneshot::Receiver<Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let piece = Pending {
            work,
            result: None,
            tx,
        };
        // A send error means the writer thread is gone; the dropped `tx` reports it.
        let _ = self.pieces.send(Box::new(piece));
        rx
    }

    /// Holds the writer thread in the batch it lands in until the returned sender is dropped,
    /// so everything submitted meanwhile is committed together, in the next batch or in that
    /// one (tests only).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> mpsc::Sender<()> {
        let (release, held) = mpsc::channel::<()>();
        drop(self.submit(Once(Some(move |_: &Connection| {
            let _ = held.recv();
            Ok(())
        }))));
        release
    }

    async fn answer<R>(rx: oneshot::Receiver<Result<R, StoreError>>) -> Result<R, StoreError> {
        rx.await.unwrap_or_else(|_| Err(StoreError::Closed))
    }

    /// Runs `work` in the next group commit and waits for the commit.
    pub async fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        Self::answer(self.submit(Once(Some(work)))).await
    }

    /// As [`Writer::write`], for work that may run more than once before the commit (see the
    /// module's note): it must change nothing but the database, and each run must start from
    /// what it captured (so it reads its inputs, never moves them out). Work that also changes
    /// memory must make its last run's change the only one (an accept's rate-limit charge:
    /// `sends_limits.rs`).
    pub async fn write_replayable<R: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        Self::answer(self.submit(Again(work))).await
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Piece>>, health: &WriteHealth) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(piece) => batch.push(piece),
                Err(_) => break,
            }
        }
        let (outcome, fault) = if health.injected() {
            (
                Err(StoreError::Unavailable("injected write fault".into())),
                true,
            )
        } else {
            commit_batch(&conn, &mut batch)
        };
        health.failing.store(fault, Ordering::SeqCst);
        for piece in batch {
            piece.reply(outcome.clone());
        }
    }
}

/// Commits the batch; returns the commit's outcome and whether the store showed a fault (the
/// batch or one of its pieces could not write).
fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Piece>]) -> (Result<(), StoreError>, bool) {
    let committed = run_batch(conn, batch).and_then(|fault| {
        conn.execute_batch("COMMIT")?;
        Ok(fault)
    });
    match committed {
        Ok(fault) => (Ok(()), fault),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (Err(StoreError::from(e)), true)
        }
    }
}

/// Runs the batch in one open transaction: the replayable pieces first, without savepoints
/// while they all succeed (after the first that does not, the transaction is rolled back and
/// each runs again in its savepoint), then the others, each in its savepoint. Whether a piece
/// showed a fault.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Piece>]) -> rusqlite::Result<bool> {
    batch.sort_by_key(|piece| !piece.replayable());
    let (replays, onces) = batch.split_at_mut(batch.iter().filter(|p| p.replayable()).count());
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut fault = false;
    if !replays
        .iter_mut()
        .all(|piece| piece.run(conn) == OpStatus::Ok)
    {
        conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")?;
        for piece in replays.iter_mut() {
            fault |= in_savepoint(conn, piece.as_mut())? == OpStatus::Fault;
        }
    }
    for piece in onces {
        fault |= in_savepoint(conn, piece.as_mut())? == OpStatus::Fault;
    }
    Ok(fault)
}

/// Runs `piece` in a savepoint, kept when it succeeds and rolled back when it does not.
fn in_savepoint(conn: &Connection, piece: &mut dyn Piece) -> rusqlite::Result<OpStatus> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    let status = piece.run(conn);
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
        let release = writer.hold();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let ok = writer.submit(Again(move |c: &Connection| {
            counted.fetch_add(1, Ordering::SeqCst);
            insert(c, 1)
        }));
        // Writes, then fails: its row must not be committed with the others.
        let refused = writer.submit(Again(|c: &Connection| {
            insert(c, 2)?;
            Err::<(), _>(StoreError::NotFound("the thing".into()))
        }));
        let once = writer.submit(Once(Some(|c: &Connection| insert(c, 3))));
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
        let release = writer.hold();
        let runs = Arc::new(AtomicUsize::new(0));
        let pending: Vec<_> = (10..13)
            .map(|n| {
                let runs = runs.clone();
                writer.submit(Again(move |c: &Connection| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    insert(c, n)
                }))
            })
            .collect();
        let once = writer.submit(Once(Some(|c: &Connection| insert(c, 20))));
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
