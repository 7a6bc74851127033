//! The shared backend: one PostgreSQL database that any number of relays use at once (SPEC §3).
//!
//! What one SQLite relay keeps in its own memory lives in the database here, so every relay
//! sees it at the next request: rolling rate-limit windows are rows (`rate_events`,
//! `receiver_sends`) checked and charged under advisory locks, idempotency keys are decided
//! under an advisory lock inside the accept transaction, jobs are leased with
//! `FOR UPDATE SKIP LOCKED` and their leases expire instead of being taken back at start-up,
//! and commits that make work wake every relay through `NOTIFY` ([`notifier`], coalesced;
//! [`listener`]).
//! Connections come from a `deadpool-postgres` pool; TLS is rustls.

mod admin;
mod clears_acks;
mod connect;
mod devices_pairing;
mod heartbeats;
mod import;
mod listener;
mod notifier;
mod queue;
mod schema;
mod sends_limits;
mod streams;
mod upkeep;
mod urgent;
mod users_tokens;

use super::contract::Basics;
use super::limits::Limits;
use super::model::CheckpointCounts;
use super::{Result, StoreError, Wakeups};
pub use import::Import;

use deadpool_postgres::{Object, Pool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The `NOTIFY` channel: a payload is `<w> <device id>…` where `w` is 1 when a delivery
/// worker has new work and the ids are the desktop devices that got an event; `*` wakes all.
/// One payload covers every commit since the previous one ([`notifier`]).
pub const WAKE_CHANNEL: &str = "reflecto_wake";

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    limits: Limits,
    wakeups: Arc<Wakeups>,
    /// Sends this relay's wake-ups to the others, coalesced.
    notifier: notifier::Notifier,
    /// `inject_write_fault`: writes fail before reaching the database.
    fault: AtomicBool,
    /// Whether the last write could not reach the database (or the readiness write failed).
    failing: AtomicBool,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects, migrates under an advisory lock (relays starting together wait for the
    /// first), and starts listening for wake-ups. Fails within about 10 s when the server is
    /// unreachable or refuses the login.
    pub async fn open(url: &str, limits: Limits) -> Result<PgStore> {
        let target = connect::Target::parse(url)?;
        let pool = target.pool()?;
        let mut client = pool.get().await.map_err(connect::pool_error)?;
        schema::migrate(&mut client).await?;
        drop(client);
        let wakeups = Arc::new(Wakeups::default());
        let listener = tokio::spawn(listener::listen(target, Arc::downgrade(&wakeups)));
        Ok(PgStore {
            inner: Arc::new(Inner {
                notifier: notifier::Notifier::start(pool.clone()),
                pool,
                limits,
                wakeups,
                fault: AtomicBool::new(false),
                failing: AtomicBool::new(false),
                listener,
            }),
        })
    }

    pub(super) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// A pooled connection for reads.
    async fn client(&self) -> Result<Object> {
        self.inner.pool.get().await.map_err(connect::pool_error)
    }

    /// A pooled connection for writes: refused while a write fault is injected. Whether one
    /// could be had is what `writes_failing` reports (a refused request is not a fault).
    async fn writer(&self) -> Result<Object> {
        let client = if self.inner.fault.load(Ordering::Relaxed) {
            Err(StoreError::Unavailable("injected write fault".into()))
        } else {
            self.client().await
        };
        self.inner.failing.store(client.is_err(), Ordering::Relaxed);
        client
    }
}

/// Runs a transaction again (four tries in all, a few milliseconds apart) while PostgreSQL
/// aborts it for a concurrent one: a deadlock between a worker's outcomes and a clear or an
/// acknowledgement locking the same jobs and devices in another order is rare, and it is
/// resolved by one side rolling back whole, so retrying it is safe.
async fn retry_contended<T, Fut>(mut attempt: impl FnMut() -> Fut) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(StoreError::Contended(why)) if tries < 4 => {
                tracing::debug!(%why, tries, "transaction conflict; running it again");
                let pause = rand::random_range(1..=5u64) << tries;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

impl Basics for PgStore {
    fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    fn writes_failing(&self) -> bool {
        self.inner.failing.load(Ordering::Relaxed)
    }

    fn inject_write_fault(&self, on: bool) {
        self.inner.fault.store(on, Ordering::Relaxed);
    }

    /// PostgreSQL checkpoints its own log; its server reports on it.
    fn checkpoints(&self) -> Option<CheckpointCounts> {
        None
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.as_db_error() {
            // Only the server's message: its DETAIL may quote row values.
            Some(db) => {
                let code = db.code();
                let fault = code.code().starts_with("08")
                    || code.code().starts_with("53")
                    || code.code().starts_with("57")
                    || code.code().starts_with("58")
                    || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
                if *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE
                {
                    StoreError::Contended(db.message().to_owned())
                } else if fault {
                    StoreError::Unavailable(db.message().to_owned())
                } else {
                    StoreError::Db(db.message().to_owned())
                }
            }
            // No server error: the connection broke or timed out — or this relay sent
            // something the driver could not encode (a bug, not a fault of the machine).
            None => {
                let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
                if e.is_closed() || io || e.to_string().contains("timed out") {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Db(e.to_string())
                }
            }
        }
    }
}
