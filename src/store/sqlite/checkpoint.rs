//! Checkpoints off the commit path. SQLite's own checkpoint runs inside the commit that fills
//! the WAL past its threshold: that group commit then copies the WAL into the database file and
//! waits for the file's fsync (tens of milliseconds, at times hundreds), and every send queued
//! behind it waits too. A thread of its own does that work here, a pass at most every
//! [`PASS_INTERVAL`] while writes come in, on a connection of its own (SQLite allows one
//! checkpoint beside a writer and readers). The writer keeps SQLite's automatic checkpoint as a
//! backstop for a WAL this thread cannot keep up with.

use super::schema;
use crate::store::Result;
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How long a pass waits for more commits after the first one it was told of: one pass then
/// copies a page that many sends touched once, and the file is synced a few times a second.
const PASS_INTERVAL: Duration = Duration::from_millis(100);

/// Tells the checkpoint thread that a commit added to the WAL. Dropping it (with the store)
/// ends the thread after its last pass.
pub struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
}

impl Checkpointer {
    pub fn spawn(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("reflecto-store-checkpoint".into())
            .spawn(move || run(&conn, &nudged))
            .map_err(|e| {
                crate::store::StoreError::Db(format!("spawning the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer { nudge })
    }

    /// A commit added frames to the WAL; never blocks (one pending nudge covers any number).
    pub fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

fn run(conn: &Connection, nudged: &mpsc::Receiver<()>) {
    while nudged.recv().is_ok() {
        std::thread::sleep(PASS_INTERVAL);
        // A PASSIVE pass copies what no reader still needs and never waits for a lock; a
        // failure (a busy lock, a full disk) is left to the next pass and the writer's backstop.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_copies_the_writers_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        schema::configure(&writer).unwrap();
        // No automatic checkpoint: every frame copied below is the thread's.
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB)")
            .unwrap();
        let checkpointer = Checkpointer::spawn(&path).unwrap();
        for _ in 0..50 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(5000))", [])
                .unwrap();
        }
        let file_len = || std::fs::metadata(&path).unwrap().len();
        let before = file_len();
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Polled: the pass runs on its own thread after PASS_INTERVAL.
        while file_len() < before + 50 * 5000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            file_len() >= before + 50 * 5000,
            "the rows reached the database file"
        );
    }
}
