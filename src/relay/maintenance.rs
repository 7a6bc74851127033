//! The relay's housekeeping beat: late heartbeats, expiry, urgent repeats, retention and
//! rate-limit windows, on a timer beside the HTTP server and the delivery worker.

use crate::server::AppState;
use std::sync::Arc;

/// The maintenance beat. Expiry and retention promise "within 30 s"; a few seconds keeps a
/// ttl-0 job from showing `queued` for long, and each round is a handful of indexed statements.
pub const MAINTENANCE_BEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// Messages deleted per write, so retention never holds the writer for long.
const PRUNE_BATCH: usize = 500;

/// One maintenance round: expire deliveries past their ttl (whether or not their channel can
/// deliver: without FCM, android jobs still expire), delete messages finished longer than the
/// retention ago, drop rate-limit windows that emptied and store rows no window needs.
pub async fn maintain_once(state: &AppState) -> crate::store::Result<()> {
    let now = state.clock.now_ms();
    // SPEC §1.18: late heartbeats first, every beat (the alarm within 10 s of falling due).
    if let Err(e) = crate::server::heartbeats::notes::send_late(state).await {
        tracing::warn!(error = %e.error.message, "sending late heartbeats failed");
    }
    state.store.sweep_limits(now).await?;
    if state.store.expire_jobs(now).await? > 0 {
        state.store.wakeups().wake_statuses();
    }
    // SPEC §1.17: urgent messages due for a repeat; taken once however many relays run.
    let repeats = state.store.schedule_repeats(now).await?;
    if !repeats.targets.is_empty() || repeats.expired > 0 {
        state.store.wakeups().wake_statuses();
    }
    // SPEC §1.17: callbacks an acknowledgement or an expiry made due, and retries.
    super::callbacks::send_due(&state.store, state.callback_allow_local, now).await?;
    if let Some(retention) = state.retention_ms() {
        while state
            .store
            .prune_finished(now.saturating_sub(retention), PRUNE_BATCH)
            .await?
            == PRUNE_BATCH
        {}
    }
    if let Some(keep) = state
        .retention_ms()
        .map(|ms| ms.max(super::retention::AUDIT_MIN_MS))
    {
        state.store.prune_audit(now.saturating_sub(keep)).await?;
    }
    state.store.prune(now).await
}

pub(super) fn spawn_maintenance(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MAINTENANCE_BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = maintain_once(&state).await {
                tracing::warn!(error = %e, "maintenance round failed");
            }
        }
    });
}
