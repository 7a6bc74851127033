//! Upkeep and health on PostgreSQL: retention of finished messages, pruning of rows no window
//! needs (on whichever relay runs it first), the VAPID key every relay shares, and the probes
//! of `/health`.

use super::PgStore;
use crate::store::contract::Upkeep;
use crate::store::limits::HOUR_MS;
use crate::store::model::{IDEMPOTENCY_WINDOW_MS, RECEIVER_WINDOW_MS};
use crate::store::pairing::PAIR_FAILURE_WINDOW_MS;
use crate::store::{Result, StoreError};
use std::sync::atomic::Ordering;

impl Upkeep for PgStore {
    async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn probe_write(&self, now: i64) -> Result<()> {
        let written = async {
            self.writer()
                .await?
                .execute(
                    "INSERT INTO store_probe (id, at_ms) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET at_ms = EXCLUDED.at_ms",
                    &[&now],
                )
                .await?;
            Ok(())
        }
        .await;
        self.inner.failing.store(
            written.as_ref().is_err_and(StoreError::is_fault),
            Ordering::Relaxed,
        );
        written
    }

    async fn prune_finished(&self, cutoff: i64, limit: usize) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m WHERE m.created_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.message_id = m.id \
                 AND (j.state NOT IN ('delivered', 'failed', 'expired', 'superseded', 'cancelled') OR j.updated_at > $1)) LIMIT $2)",
                &[&cutoff, &(limit as i64)],
            )
            .await?;
        Ok(n as usize)
    }

    async fn prune(&self, now: i64) -> Result<()> {
        self.writer()
            .await?
            .batch_execute(&format!(
                "DELETE FROM receiver_sends WHERE at_ms <= {}; \
                 DELETE FROM idempotency WHERE created_at <= {}; \
                 DELETE FROM pairing_codes WHERE expires_at <= {now}; \
                 DELETE FROM pair_failures WHERE at_ms <= {}",
                now - RECEIVER_WINDOW_MS,
                now - IDEMPOTENCY_WINDOW_MS,
                now - PAIR_FAILURE_WINDOW_MS
            ))
            .await?;
        Ok(())
    }

    /// Drops rate events no window needs any more (the longest rolling window is a day).
    async fn sweep_limits(&self, now: i64) -> Result<()> {
        self.writer()
            .await?
            .execute(
                "DELETE FROM rate_events WHERE at_ms <= $1",
                &[&(now - HOUR_MS)],
            )
            .await?;
        Ok(())
    }

    async fn vapid_private_key(&self, fresh: [u8; 32], now: i64) -> Result<Vec<u8>> {
        let client = self.writer().await?;
        client
            .execute(
                "INSERT INTO vapid (id, private_key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
                &[&fresh.as_slice(), &now],
            )
            .await?;
        let row = client
            .query_one("SELECT private_key FROM vapid WHERE id = 1", &[])
            .await?;
        Ok(row.get(0))
    }
}
