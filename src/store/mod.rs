//! The embedded store: one SQLite file (WAL) holding users, tokens, devices, pairing codes,
//! messages, delivery jobs and the rate-limit counters that survive restarts.
//!
//! Methods say what the relay needs ("accept this send", "claim due jobs"), not how SQL does
//! it. Writes go through one group-commit [`writer`]; reads use a small pool of their own
//! connections, so readers never wait for the writer. Several processes (a running relay and
//! `reflecto admin`) may open the same file: SQLite's locking and `busy_timeout` serialize
//! them. Today SQLite is the only backend; a second one would make `Store` an enum.

mod devices;
mod jobs;
mod messages;
mod schema;
mod tokens;
mod users;
mod writer;

pub use devices::{DeviceRecord, NewDevice, PairOutcome};
pub use jobs::{ClaimedJob, JobOutcome, JobPayload, PayloadKind, StreamEvent};
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
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
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
    /// Opens (creating if needed) `<data_dir>/reflecto.db` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Db(format!("creating data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
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

    /// A cheap liveness probe for `/health/ready`.
    pub fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }
}

/// Milliseconds since the Unix epoch: the store's one time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests;
