//! The relay's state: users, tokens, devices, pairing codes, messages, delivery jobs, rate-limit
//! counters and the wake-ups that follow a commit.
//!
//! [`Store`] is a closed set of backends — SQLite in the data dir (the default, nothing to
//! install) and PostgreSQL (SPEC §3: any number of relays on one database) — behind one set of
//! async methods that say what the relay needs ("accept this send", "claim due jobs"), not how
//! SQL does it. Those methods are the store contract (`contract.rs`): each is declared once,
//! with its documentation, in a crate-private trait per chapter of the conformance story that
//! both backends implement, and the enum's forwarding method is derived from the same
//! declaration. Records are in [`model`]; all SQL is in `sqlite/` and `postgres/`, each laid
//! out in the same files, named after the story's chapters.

pub mod admin;
mod contract;
pub mod copy;
pub mod heartbeats;
pub mod limits;
pub mod model;
pub mod pairing;
mod postgres;
mod sqlite;
#[cfg(test)]
mod story;
mod tokens;
mod wakeups;

pub use heartbeats::{HeartbeatRecord, HeartbeatState, Ping, PingOutcome, PingRefusal};
pub use model::*;
pub use sqlite::DB_FILE;
pub use wakeups::Wakeups;

use crate::api::token::Secret;
use contract::{Basics, DevicesPairing, SendsLimits, UsersTokens};
use limits::Limits;
use postgres::PgStore;
use sqlite::SqliteStore;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(String),
    /// The store cannot write (disk full, I/O error, the file locked too long, the database
    /// server gone): a fault of the machine, not of the request, and one that clears by itself.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database aborted the transaction for a concurrent one (a deadlock or a
    /// serialization failure): it rolled back whole, and running it again succeeds.
    #[error("transaction conflict: {0}")]
    Contended(String),
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether this says the store is failing (rather than refusing one request).
    pub fn is_fault(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `reflecto.db` in this data dir.
    Sqlite(PathBuf),
    /// A `postgres://` URL (it may hold a password: never printed whole).
    Postgres(String),
}

impl Database {
    /// The `--database` value if given, else SQLite in the data dir.
    pub fn choose(url: Option<&str>, data_dir: &Path) -> Result<Database, String> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Database::Sqlite(data_dir.to_path_buf())),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Database::Postgres(u.to_owned()))
            }
            Some(_) => Err(
                "--database takes a postgres://user:password@host/dbname URL; leave it out to use SQLite in the data dir"
                    .into(),
            ),
        }
    }

    /// A store that could not be opened: where, and why, without the URL's password (exit 2).
    pub fn open_failed(&self, e: StoreError) -> crate::api::ApiError {
        crate::api::ApiError::new(
            crate::api::ErrorCode::StoreUnreachable,
            format!("opening the store ({}): {e}", self.describe()),
        )
    }

    /// For messages: the SQLite file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(dir) => dir.join(DB_FILE).display().to_string(),
            Database::Postgres(url) => redact_url(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A database URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unparsable database URL)".into(),
    }
}

/// The relay's store: one of a closed set of backends.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:expr, $b:ident => $call:expr) => {
        match $self {
            Store::Sqlite($b) => $call,
            Store::Postgres($b) => $call,
        }
    };
}

/// The operations of the contract ([`contract`]) forward to the backend by themselves; these
/// are the ones that open a store, or add what is the same on every backend above it.
impl Store {
    /// Opens (creating and migrating if needed) the store. `limits` are the relay's configured
    /// rate limits; `now` is when its persistent counters are read back.
    pub async fn open(db: &Database, limits: Limits, now: i64) -> Result<Store> {
        match db {
            Database::Sqlite(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || SqliteStore::open(&dir, limits, now))
                    .await
                    .map_err(|e| StoreError::Db(e.to_string()))?
                    .map(Store::Sqlite)
            }
            Database::Postgres(url) => PgStore::open(url, limits).await.map(Store::Postgres),
        }
    }

    /// What wakes delivery workers and desktop streams after a commit.
    pub fn wakeups(&self) -> &Wakeups {
        each!(self, b => b.wakeups())
    }

    /// Whether the last write failed for a store fault (not for a refused request).
    pub fn writes_failing(&self) -> bool {
        each!(self, b => b.writes_failing())
    }

    /// For tests and operations drills: while `on`, every write fails as a full disk would,
    /// before touching the database. Nothing already committed is affected.
    pub fn inject_write_fault(&self, on: bool) {
        each!(self, b => b.inject_write_fault(on))
    }

    /// The embedded store's WAL checkpoint counts (`/metrics`); `None` on a server database.
    pub fn checkpoints(&self) -> Option<CheckpointCounts> {
        each!(self, b => b.checkpoints())
    }

    /// Whether jobs may be leased by other processes (several relays on one database): then a
    /// relay never takes back leases at start, it waits for them to expire.
    pub fn is_shared(&self) -> bool {
        !matches!(self, Store::Sqlite(_))
    }

    /// How often waiting streams and workers look at the store even without a wake-up: on a
    /// shared database wake-ups from other relays are lost while a listener reconnects.
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(_) => Some(std::time::Duration::from_secs(1)),
        }
    }

    /// A consistent copy of an SQLite store while the relay runs (SPEC §1.14); PostgreSQL's
    /// backup is the operator's own `pg_dump`.
    pub async fn backup(&self, dest: &Path) -> Result<()> {
        match self {
            Store::Sqlite(s) => {
                let (s, dest) = (s.clone(), dest.to_path_buf());
                tokio::task::spawn_blocking(move || s.backup(&dest))
                    .await
                    .map_err(|e| StoreError::Db(e.to_string()))?
            }
            Store::Postgres(_) => Err(StoreError::Conflict(
                "`admin backup` copies an SQLite store; back up PostgreSQL with pg_dump".into(),
            )),
        }
    }

    /// Creates a token and returns it: the only time its secret exists outside the caller.
    pub async fn create_token(&self, new: NewToken, now: i64) -> Result<(TokenRecord, Secret)> {
        let owner = self.user_by_name(&new.user).await?;
        let issued = tokens::issue(new, owner, now);
        each!(self, b => b.insert_token(&issued.record, &issued.hash).await)?;
        Ok((issued.record, issued.secret))
    }

    /// Every token, or one user's (an unknown user is `NotFound`, not an empty list).
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        if let Some(user) = user {
            self.user_by_name(user).await?;
        }
        each!(self, b => b.list_tokens(user).await)
    }

    /// Every device, or one user's (an unknown user is `NotFound`, not an empty list).
    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        if let Some(user) = user {
            self.user_by_name(user).await?;
        }
        each!(self, b => b.list_devices(user).await)
    }

    /// Steps 6–7 of SPEC §1.7 in one commit (see [`SendsLimits::accept_send`]); a target
    /// without a payload of its own needs the envelope.
    pub async fn accept_send(&self, send: NewSend) -> Result<AcceptOutcome> {
        if send.envelope.is_none() && send.targets.iter().any(|t| t.payload.is_none()) {
            return Err(StoreError::Conflict(
                "a target without a payload of its own needs the envelope".into(),
            ));
        }
        each!(self, b => b.accept_send(send).await)
    }
}

/// Milliseconds since the Unix epoch: the store's one time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
