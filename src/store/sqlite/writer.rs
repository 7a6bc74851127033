//! Group commit: one thread owns the write connection and commits whatever work has queued up
//! in one transaction, each piece inside its own savepoint. Throughput comes from sharing one
//! commit across concurrent requests; a failing piece rolls back alone.
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
type Op = Box<dyn FnOnce(Option<&Connection>) -> (OpStatus, Reply) + Send>;

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
        let op: Op = Box::new(move |conn| {
            let Some(conn) = conn else {
                let reply: Reply = Box::new(move |batch| {
                    let _ = tx.send(Err(batch.err().unwrap_or(StoreError::Closed)));
                });
                return (OpStatus::Fault, reply);
            };
            let result = work(conn);
            let status = match &result {
                Ok(_) => OpStatus::Ok,
                Err(e) if e.is_fault() => OpStatus::Fault,
                Err(_) => OpStatus::Refused,
            };
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (status, reply)
        });
        // A send error means the writer thread is gone; the dropped `tx` reports it below.
        let _ = self.ops.send(op);
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
        let (outcome, replies, fault) = if health.injected() {
            let e = StoreError::Unavailable("injected write fault".into());
            let replies = batch.into_iter().map(|op| op(None).1).collect();
            (Err(e), replies, true)
        } else {
            commit_batch(&conn, batch)
        };
        health.failing.store(fault, Ordering::SeqCst);
        for reply in replies {
            reply(outcome.clone());
        }
    }
}

type Replies = Vec<Reply>;

/// Commits the batch; returns the commit's outcome, every op's reply, and whether the store
/// showed a fault (the batch or one of its ops could not write).
fn commit_batch(conn: &Connection, batch: Vec<Op>) -> (Result<(), StoreError>, Replies, bool) {
    let mut replies = Vec::with_capacity(batch.len());
    let mut fault = false;
    let mut ops = batch.into_iter();
    let failed = |e: rusqlite::Error, replies: &mut Replies, rest: std::vec::IntoIter<Op>| {
        let e = StoreError::from(e);
        // The ops that never ran still get an answer: the batch's failure.
        replies.extend(rest.map(|op| op(None).1));
        (Err(e), std::mem::take(replies), true)
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return failed(e, &mut replies, ops);
    }
    while let Some(op) = ops.next() {
        if let Err(e) = conn
            .prepare_cached("SAVEPOINT op")
            .and_then(|mut s| s.execute([]))
        {
            let _ = conn.execute_batch("ROLLBACK");
            return failed(e, &mut replies, ops);
        }
        let (status, reply) = op(Some(conn));
        replies.push(reply);
        fault |= status == OpStatus::Fault;
        let end = if status == OpStatus::Ok {
            conn.prepare_cached("RELEASE op")
                .and_then(|mut s| s.execute([]))
                .map(drop)
        } else {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")
        };
        if let Err(e) = end {
            let _ = conn.execute_batch("ROLLBACK");
            return failed(e, &mut replies, ops);
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
