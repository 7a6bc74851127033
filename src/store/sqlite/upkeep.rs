//! Upkeep and health on the embedded backend: retention of finished messages, pruning of rows
//! no window needs, the VAPID key (created at first start and kept, so browsers' subscriptions,
//! bound to it, keep working across restarts) and the probes of `/health`.

use super::SqliteStore;
use crate::store::Result;
use crate::store::contract::Upkeep;
use crate::store::model::*;
use rusqlite::params;

/// Receiver sends at or before `?1`, out of every window.
pub(super) const PRUNE_RECEIVER_SENDS_SQL: &str = "DELETE FROM receiver_sends WHERE at_ms <= ?1";

/// Up to `?2` messages accepted at or before `?1` whose every job finished by then, found
/// through `messages_page(created_at, id)`, with their jobs (by cascade).
pub(super) const PRUNE_FINISHED_SQL: &str = "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m WHERE m.created_at <= ?1 \
     AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.message_id = m.id \
     AND (j.state NOT IN ('delivered', 'failed', 'expired', 'superseded', 'cancelled') OR j.updated_at > ?1)) LIMIT ?2)";

impl Upkeep for SqliteStore {
    /// A cheap liveness probe: one read.
    async fn ping(&self) -> Result<()> {
        self.lookup(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    /// The readiness probe of `/health/ready`: a real write (one row, through the group
    /// commit), so a full disk or a failing device shows here, and clears here once it heals.
    async fn probe_write(&self, now: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                c.prepare_cached("INSERT OR REPLACE INTO store_probe (id, at_ms) VALUES (1, ?1)")?
                    .execute([now])?;
                Ok(())
            })
            .await
    }

    /// Deletes up to `limit` messages finished (every delivery delivered, failed or expired) at
    /// or before `cutoff`, with their jobs; returns how many. A message with any unfinished
    /// delivery is kept whatever its age: its ttl runs out first and expiry finishes it.
    async fn prune_finished(&self, cutoff: i64, limit: usize) -> Result<usize> {
        self.writer()
            .write(move |c| {
                Ok(c.prepare_cached(PRUNE_FINISHED_SQL)?
                    .execute(params![cutoff, limit as i64])?)
            })
            .await
    }

    /// Drops what no window needs any more: old receiver sends and idempotency records.
    async fn prune(&self, now: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                c.execute(PRUNE_RECEIVER_SENDS_SQL, [now - RECEIVER_WINDOW_MS])?;
                c.execute(
                    "DELETE FROM idempotency WHERE created_at <= ?1",
                    [now - IDEMPOTENCY_WINDOW_MS],
                )?;
                c.execute("DELETE FROM pairing_codes WHERE expires_at <= ?1", [now])?;
                c.execute(
                    "DELETE FROM pair_failures WHERE at_ms <= ?1",
                    [now - crate::store::pairing::PAIR_FAILURE_WINDOW_MS],
                )?;
                Ok(())
            })
            .await
    }

    async fn sweep_limits(&self, now: i64) -> Result<()> {
        self.limiter().sweep(now);
        Ok(())
    }

    /// The stored VAPID private key; `fresh` is stored and returned when there is none yet.
    async fn vapid_private_key(&self, fresh: [u8; 32], now: i64) -> Result<Vec<u8>> {
        self.writer()
            .write(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO vapid (id, private_key, created_at) VALUES (1, ?1, ?2)",
                    params![fresh.to_vec(), now],
                )?;
                Ok(
                    c.query_row("SELECT private_key FROM vapid WHERE id = 1", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
    }
}
