//! The embedded store: one SQLite file (WAL) holding users, tokens, devices, pairing codes,
//! messages, delivery jobs and the rate-limit counters that survive restarts.
//!
//! Methods say what the relay needs ("accept this send", "claim due jobs"), not how SQL does
//! it. Writes go through one group-commit [`writer`]; reads use a small pool of their own
//! connections, so readers never wait for the writer. Several processes (a running relay and
//! `reflecto admin`) may open the same file: SQLite's locking and `busy_timeout` serialize
//! them. Today SQLite is the only backend; a second one would make `Store` an enum.

mod backup;
mod devices;
mod jobs;
mod messages;
mod private;
mod schema;
mod tokens;
mod users;
mod vapid;
mod writer;

pub use devices::{DeviceRecord, NewDevice, PairOutcome, WebPushAddress};
pub use jobs::{
    Channel, ClaimedJob, DeliveryTarget, JobOutcome, JobPayload, PayloadKind, StreamEvent,
};
pub use messages::{AcceptOutcome, DeliveryState, MessageStatus, NewSend, StoredResponse, Target};
pub use tokens::{NewToken, TokenRecord};
pub use users::UserRecord;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use writer::Writer;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(String),
    /// The store cannot write (disk full, I/O error, the file locked too long): a fault of the
    /// machine, not of the request, and one that clears by itself.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether this says the store is failing (rather than refusing one request).
    pub fn is_fault(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }
}

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

/// The `receiver_daily` window, for restoring it after a restart.
pub fn messages_window_ms() -> i64 {
    messages::RECEIVER_WINDOW_MS
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
}

pub const DB_FILE: &str = "reflecto.db";

impl Store {
    /// Opens (creating if needed) `<data_dir>/reflecto.db` and migrates it. The data dir is
    /// created 0700 and the store's files are 0600 whatever the umask: they hold live pairing
    /// codes and message contents.
    pub fn open(data_dir: &Path) -> Result<Store> {
        private::create_dir(data_dir).map_err(|e| {
            StoreError::Db(format!("creating data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        private::create_files(&path)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", path.display())))?;
        let mut conn = Connection::open(&path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Writer::spawn(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read on a pooled read-only connection.
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

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    /// A cheap liveness probe: one read.
    pub fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// The readiness probe of `/health/ready`: a real write (one row, through the group
    /// commit), so a full disk or a failing device shows here, and clears here once it heals.
    pub async fn probe_write(&self, now: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                c.prepare_cached("INSERT OR REPLACE INTO store_probe (id, at_ms) VALUES (1, ?1)")?
                    .execute([now])?;
                Ok(())
            })
            .await
    }

    /// Whether the last group commit failed for a store fault (not for a refused request).
    pub fn writes_failing(&self) -> bool {
        self.writer().health().failing()
    }

    /// For tests and operations drills: while `on`, every write batch fails as a full disk
    /// would, before touching the database. Nothing already committed is affected.
    pub fn inject_write_fault(&self, on: bool) {
        self.writer().health().set_injected(on);
    }
}

/// Milliseconds since the Unix epoch: the store's one time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests;
