//! The relay's VAPID key (SPEC §1.13): created at first start and kept, so browsers' existing
//! subscriptions (bound to this key) keep working across restarts.

use super::SqliteStore;
use crate::store::Result;
use rusqlite::params;

impl SqliteStore {
    /// The stored VAPID private key; `fresh` is stored and returned when there is none yet.
    pub async fn vapid_private_key(&self, fresh: [u8; 32], now: i64) -> Result<Vec<u8>> {
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
