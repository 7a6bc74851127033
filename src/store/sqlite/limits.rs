//! Rate limits on the embedded backend. One relay owns the file, so the rolling windows are
//! exact logs in its memory; the sends that count towards the monthly and daily layers are
//! rows written with each accepted send, and reloaded here at start.

use super::SqliteStore;
use crate::store::Result;
use crate::store::limits::{LayerStatus, Refusal, month_key};
use std::net::IpAddr;

impl SqliteStore {
    /// Reloads this month's counts and the last day's receiver sends into the limiter.
    pub(super) fn restore_limits(&self, now: i64) -> Result<()> {
        let month = month_key(now);
        let counts = self.month_counts(&month)?;
        let sends = self.receiver_sends_since(now - crate::store::model::RECEIVER_WINDOW_MS)?;
        self.limiter().restore(&month, counts, sends);
        Ok(())
    }

    pub async fn charge_ip(
        &self,
        ip: IpAddr,
        now: i64,
    ) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        Ok(self.limiter().check_ip(ip, now))
    }

    pub async fn limit_statuses(
        &self,
        ip: IpAddr,
        token_id: &str,
        receiver: i64,
        now: i64,
    ) -> Result<Vec<LayerStatus>> {
        Ok(self.limiter().peek(ip, token_id, receiver, now))
    }

    pub async fn sweep_limits(&self, now: i64) -> Result<()> {
        self.limiter().sweep(now);
        Ok(())
    }
}
