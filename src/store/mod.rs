//! The relay's state: users, tokens, devices, pairing codes, messages, delivery jobs, rate-limit
//! counters and the wake-ups that follow a commit.
//!
//! [`Store`] is a closed set of backends — SQLite in the data dir (the default, nothing to
//! install) and PostgreSQL (SPEC §3: any number of relays on one database) — behind one set of
//! async methods that say what the relay needs ("accept this send", "claim due jobs"), not how
//! SQL does it. Records are in [`model`]; all SQL is in `sqlite/` and `postgres/`.

pub mod copy;
pub mod limits;
pub mod model;
pub mod pairing;
mod postgres;
mod sqlite;
#[cfg(test)]
mod story;
mod tokens;
mod wakeups;

pub use model::*;
pub use sqlite::DB_FILE;
pub use wakeups::Wakeups;

use crate::api::token::Secret;
use limits::{LayerStatus, Limits, Refusal};
use postgres::PgStore;
use sqlite::SqliteStore;
use std::net::IpAddr;
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

    // ---- health ----

    /// A cheap liveness probe: one read.
    pub async fn ping(&self) -> Result<()> {
        each!(self, b => b.ping().await)
    }

    /// The readiness probe of `/health/ready`: a real write, so a full disk or a failing
    /// database shows here, and clears here once it heals.
    pub async fn probe_write(&self, now: i64) -> Result<()> {
        each!(self, b => b.probe_write(now).await)
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

    // ---- users, tokens ----

    pub async fn add_user(&self, name: &str, now: i64) -> Result<UserRecord> {
        each!(self, b => b.add_user(name, now).await)
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        each!(self, b => b.list_users().await)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<UserRecord> {
        each!(self, b => b.user_by_name(name).await)
    }

    /// Removes a user with their tokens, devices, codes and messages.
    pub async fn remove_user(&self, name: &str) -> Result<()> {
        each!(self, b => b.remove_user(name).await)
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

    pub async fn revoke_token(&self, id: &str, now: i64) -> Result<()> {
        each!(self, b => b.revoke_token(id, now).await)
    }

    /// The live token with this secret, if any (revoked tokens are returned with `revoked`).
    pub async fn authenticate_token(&self, secret: &str) -> Result<Option<TokenRecord>> {
        each!(self, b => b.authenticate_token(secret).await)
    }

    /// The live token with this secret and its owner's reachable devices (the send path's
    /// one lookup).
    pub async fn authenticate_sender(&self, secret: &str) -> Result<Option<Sender>> {
        each!(self, b => b.authenticate_sender(secret).await)
    }

    // ---- devices, pairing ----

    pub async fn add_device(&self, user: &str, new: NewDevice, now: i64) -> Result<PairOutcome> {
        each!(self, b => b.add_device(user, new, now).await)
    }

    /// Every device, or one user's (an unknown user is `NotFound`, not an empty list).
    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        if let Some(user) = user {
            self.user_by_name(user).await?;
        }
        each!(self, b => b.list_devices(user).await)
    }

    /// The devices a send to this user can target.
    pub async fn reachable_devices_of(&self, user_id: i64) -> Result<Vec<DeviceRecord>> {
        each!(self, b => b.reachable_devices_of(user_id).await)
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        each!(self, b => b.device(id).await)
    }

    /// Removes a device; its open jobs fail and its streams end.
    pub async fn remove_device(&self, id: &str, now: i64) -> Result<()> {
        each!(self, b => b.remove_device(id, now).await)
    }

    pub async fn authenticate_device(&self, credential: &str) -> Result<Option<DeviceRecord>> {
        each!(self, b => b.authenticate_device(credential).await)
    }

    /// A fresh 6-digit code for `user`, valid 10 minutes.
    pub async fn create_pair_code(&self, user: &str, now: i64) -> Result<String> {
        each!(self, b => b.create_pair_code(user, now).await)
    }

    /// Redeems a code for a new device (SPEC §1.9), counting failures across every relay.
    pub async fn redeem_pair_code(
        &self,
        code: &str,
        new: NewDevice,
        now: i64,
    ) -> Result<PairOutcome> {
        each!(self, b => b.redeem_pair_code(code, new, now).await)
    }

    // ---- sends, rate limits ----

    /// Step 1 of SPEC §1.7: both per-IP layers, charged together when both have room.
    pub async fn charge_ip(
        &self,
        ip: IpAddr,
        now: i64,
    ) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        each!(self, b => b.charge_ip(ip, now).await)
    }

    /// Every enabled layer's state for one caller, charging nothing (`GET /v1/token`).
    pub async fn limit_statuses(
        &self,
        ip: IpAddr,
        token_id: &str,
        receiver: i64,
        now: i64,
    ) -> Result<Vec<LayerStatus>> {
        each!(self, b => b.limit_statuses(ip, token_id, receiver, now).await)
    }

    /// Steps 6–7 of SPEC §1.7 in one commit: an earlier response for the same
    /// `Idempotency-Key` is replayed; otherwise the token and receiver layers are checked, all
    /// charged only if all pass, and the message with one job per target is committed.
    pub async fn accept_send(&self, send: NewSend) -> Result<AcceptOutcome> {
        if send.envelope.is_none() && send.targets.iter().any(|t| t.payload.is_none()) {
            return Err(StoreError::Conflict(
                "a target without a payload of its own needs the envelope".into(),
            ));
        }
        each!(self, b => b.accept_send(send).await)
    }

    /// The response stored for this token and key within the last 24 h.
    pub async fn idempotent_response(
        &self,
        token_id: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        each!(self, b => b.idempotent_response(token_id, key, now).await)
    }

    /// Per-device delivery state of a message of this owner (`GET /v1/messages/{id}`).
    pub async fn message_status(&self, id: &str, user_id: i64) -> Result<Option<MessageStatus>> {
        each!(self, b => b.message_status(id, user_id).await)
    }

    // ---- the queue ----

    /// Leases up to `limit` due jobs of the given channels for `lease_ms`; on a shared
    /// database also jobs whose lease expired (their relay died).
    pub async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
        channels: &[Channel],
    ) -> Result<Vec<ClaimedJob>> {
        each!(self, b => b.claim_due(now, limit, lease_ms, channels).await)
    }

    /// Makes jobs whose lease ended before `lease_cutoff` claimable now.
    pub async fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize> {
        each!(self, b => b.recover_expired_leases(lease_cutoff, now).await)
    }

    /// Extends to `until` the leases of these jobs that are still leased: the worker working
    /// on them is alive, so no other relay may take them over yet.
    pub async fn renew_leases(&self, job_ids: Vec<i64>, until: i64) -> Result<()> {
        each!(self, b => b.renew_leases(job_ids, until).await)
    }

    /// Records the outcomes of a batch of attempts in one commit. An outcome lands only on a
    /// job still leased: a stalled relay's late result cannot undo a job another relay took
    /// over and finished.
    pub async fn complete_jobs(&self, outcomes: Vec<(i64, JobOutcome)>, now: i64) -> Result<()> {
        each!(self, b => b.complete_jobs(outcomes, now).await)
    }

    /// Expires waiting jobs whose ttl ran out.
    pub async fn expire_jobs(&self, now: i64) -> Result<usize> {
        each!(self, b => b.expire_jobs(now).await)
    }

    /// When the next job of the given channels falls due, if any is queued.
    pub async fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>> {
        each!(self, b => b.next_due_at(channels).await)
    }

    /// Jobs not yet final: the queue depth metric.
    pub async fn queue_depth(&self) -> Result<i64> {
        each!(self, b => b.queue_depth().await)
    }

    /// An extension device's unacknowledged events after `after_seq`, in order.
    pub async fn stream_events(
        &self,
        device_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        each!(self, b => b.stream_events(device_id, after_seq, limit).await)
    }

    /// Marks the device's events with these sequence numbers delivered; returns how many were.
    pub async fn ack_stream_events(
        &self,
        device_id: &str,
        seqs: Vec<i64>,
        now: i64,
    ) -> Result<usize> {
        each!(self, b => b.ack_stream_events(device_id, seqs, now).await)
    }

    // ---- upkeep ----

    /// Deletes up to `limit` messages finished at or before `cutoff`, with their jobs.
    pub async fn prune_finished(&self, cutoff: i64, limit: usize) -> Result<usize> {
        each!(self, b => b.prune_finished(cutoff, limit).await)
    }

    /// Drops rows no window needs any more (idempotency keys, old sends, pairing failures).
    pub async fn prune(&self, now: i64) -> Result<()> {
        each!(self, b => b.prune(now).await)
    }

    /// Forgets rate-limit windows that emptied.
    pub async fn sweep_limits(&self, now: i64) -> Result<()> {
        each!(self, b => b.sweep_limits(now).await)
    }

    /// The relay's VAPID private key: the stored one, or `fresh` stored now if none is.
    pub async fn vapid_private_key(&self, fresh: [u8; 32], now: i64) -> Result<Vec<u8>> {
        each!(self, b => b.vapid_private_key(fresh, now).await)
    }
}

/// Milliseconds since the Unix epoch: the store's one time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
