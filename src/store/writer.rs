//! Group commit: one thread owns the write connection and commits whatever work has queued up
//! in one transaction, each piece inside its own savepoint. Throughput comes from sharing one
//! commit across concurrent requests; a failing piece rolls back alone.

use super::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Sent back after the batch's COMMIT, so a caller never sees success before durability.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Op = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub struct Writer {
    ops: mpsc::Sender<Op>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> Writer {
        let (ops, rx) = mpsc::channel::<Op>();
        std::thread::Builder::new()
            .name("reflecto-store-writer".into())
            .spawn(move || run(conn, rx))
            .expect("spawning the store writer thread");
        Writer { ops }
    }

    fn submit<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = work(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, reply)
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

    /// The same, for synchronous callers (the admin commands).
    pub fn write_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(work)
            .blocking_recv()
            .unwrap_or_else(|_| Err(StoreError::Closed))
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let replies = commit_batch(&conn, batch);
        let (outcome, replies) = match replies {
            Ok(replies) => (Ok(()), replies),
            Err((e, replies)) => (Err(e), replies),
        };
        for reply in replies {
            reply(outcome.clone());
        }
    }
}

type Replies = Vec<Reply>;

fn commit_batch(conn: &Connection, batch: Vec<Op>) -> Result<Replies, (StoreError, Replies)> {
    let mut replies = Vec::with_capacity(batch.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: answer every op with the failure.
        // Nothing ran: dropping the ops drops their senders, so each caller sees Closed.
        drop(batch);
        return Err((e.into(), replies));
    }
    for op in batch {
        if let Err(e) = conn
            .prepare_cached("SAVEPOINT op")
            .and_then(|mut s| s.execute([]))
        {
            let _ = conn.execute_batch("ROLLBACK");
            return Err((e.into(), replies));
        }
        let (ok, reply) = op(conn);
        replies.push(reply);
        let end = if ok {
            conn.prepare_cached("RELEASE op")
                .and_then(|mut s| s.execute([]))
                .map(drop)
        } else {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")
        };
        if let Err(e) = end {
            let _ = conn.execute_batch("ROLLBACK");
            return Err((e.into(), replies));
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(replies),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err((e.into(), replies))
        }
    }
}
