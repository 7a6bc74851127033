//! The embedded backend: one SQLite file (WAL) in the data dir holding users, tokens, devices,
//! pairing codes, messages, delivery jobs and the rate-limit counters that survive restarts.
//!
//! Writes go through one group-commit [`writer`]; reads use a small pool of their own
//! connections, so readers never wait for the writer. Several processes (a running relay and
//! `reflecto admin`) may open the same file: SQLite's locking and `busy_timeout` serialize
//! them. One relay owns the file (the data-dir lock), so the rolling rate-limit windows live in
//! its memory ([`RateLimiter`]) and only the monthly and daily sends are persisted and
//! reloaded at start.

mod admin;
mod backup;
mod checkpoint;
mod clears_acks;
mod columns;
mod devices_pairing;
mod export;
mod heartbeats;
mod private;
mod queue;
mod schema;
mod sends_limits;
mod streams;
#[cfg(test)]
mod tests;
mod upkeep;
mod urgent;
mod users_tokens;
mod writer;

use super::contract::Basics;
use super::limits::{Limits, RateLimiter};
use super::model::CheckpointCounts;
use super::{Result, StoreError, Wakeups};
use checkpoint::Thresholds;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use writer::Writer;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
                | C::ReadOnly
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::FileLockingProtocolFailed,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Db(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    limiter: RateLimiter,
    wakeups: Wakeups,
    checkpoints: Arc<checkpoint::Shared>,
}

pub const DB_FILE: &str = "reflecto.db";

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/reflecto.db` and migrates it. The data dir is
    /// created 0700 and the store's files are 0600 whatever the umask: they hold live pairing
    /// codes and message contents.
    pub fn open(data_dir: &Path, limits: Limits, now: i64) -> Result<SqliteStore> {
        private::create_dir(data_dir).map_err(|e| {
            StoreError::Db(format!("creating data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        private::create_files(&path)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", path.display())))?;
        let mut conn = Connection::open(&path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        tune_writer(&conn)?;
        let checkpoints = checkpoint::attach(&mut conn, &path, Thresholds::STORE)?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Writer::spawn(conn),
                readers: Mutex::new(Vec::new()),
                limiter: RateLimiter::new(limits),
                wakeups: Wakeups::default(),
                checkpoints,
            }),
        };
        store.restore_limits(now)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A read whose cost is bounded by an index: a key, or a key and a `LIMIT`, or one owner's
    /// devices. It runs inline on the async thread, and may: a WAL reader never waits for the
    /// writer or another reader (it reads its own snapshot, and `busy_timeout` only applies to
    /// writers and to recovery after a crash, which `open` has done before the relay serves),
    /// so its only wait is reading a few B-tree pages, microseconds when cached — less than
    /// handing the thread's other tasks to another thread would cost on the send path.
    pub(crate) async fn lookup<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        self.read(f)
    }

    /// A read that grows with the data (every user, token or device; a count or minimum over
    /// the queue): marked blocking where it happens, so the runtime moves this thread's other
    /// tasks elsewhere while it runs. On a current-thread runtime (the CLI's `admin`, tests)
    /// nothing else waits on the thread, and it runs inline.
    pub(crate) async fn scan<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.read(f))
            }
            _ => self.read(f),
        }
    }

    /// Runs a read on a pooled read-only connection, on this thread: for synchronous callers
    /// (opening the store, `admin copy`'s export); async code uses [`Self::lookup`] or
    /// [`Self::scan`].
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let pooled = self
            .inner
            .readers
            .lock()
            .expect("reader pool poisoned")
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                schema::stable_plans(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        self.inner
            .readers
            .lock()
            .expect("reader pool poisoned")
            .push(conn);
        result
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }
}

/// The write connection's own settings (PERF): every accepted send dirties a couple of
/// B-tree pages at random (its message id is 128 random bits, in two indexes), so the
/// writer's costs are reading pages back and copying WAL frames into the database file.
/// A 64 MiB page cache keeps the indexes' pages in memory (the 2 MiB default re-read them
/// from the file). Checkpointing every 10,000 frames (about 40 MiB of WAL) instead of
/// SQLite's 1,000 copies a page that many sends touched once per checkpoint, and syncs the
/// files a tenth as often (measured with SQLite's own checkpoint in the writer, `strace -e
/// fsync` under `bench/send.sh`: 59 fsyncs in 6 s, up to 206 ms each, with 1,000; 8 with
/// 10,000). [`checkpoint`] does the bulk of the copy and its syncs on a thread of its own.
/// `journal_size_limit` gives the WAL file back after the log restarts, so it does not stay at
/// its high-water mark.
fn tune_writer(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA journal_size_limit = 41943040;")?;
    Ok(())
}

impl Basics for SqliteStore {
    fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    fn writes_failing(&self) -> bool {
        self.writer().health().failing()
    }

    fn inject_write_fault(&self, on: bool) {
        self.writer().health().set_injected(on);
    }

    fn checkpoints(&self) -> Option<CheckpointCounts> {
        Some(self.inner.checkpoints.counts())
    }
}
