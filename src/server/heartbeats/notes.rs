//! The heartbeat notifications (SPEC §1.18) with their exact texts — late, back, failed — all
//! with `key` `hb:<name>` so each replaces the one before on every screen (§1.15), and the
//! maintenance beat's round that sends the late ones. Each is committed by the store with the
//! state change that causes it, so it is sent once.

use crate::api::{MAX_MESSAGE_BYTES, Priority, SendRequest};
use crate::server::AppState;
use crate::server::error::Failure;
use crate::server::send::own_notification;
use crate::store::{HeartbeatRecord, NewSend};
use crate::validate::heartbeat::format_duration;
use crate::validate::truncate_utf8;

/// Due heartbeats handled per maintenance round (the rest wait for the next beat, 5 s on).
const LATE_BATCH: usize = 200;

/// The key every notification of heartbeat `name` carries.
pub fn key(name: &str) -> String {
    format!("hb:{name}")
}

/// A time in a notification's text: RFC 3339, UTC, to the second.
fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `<name> is late`: no ping since `last_ping_at` for `every` and `grace`.
pub fn late(hb: &HeartbeatRecord) -> SendRequest {
    SendRequest {
        title: Some(format!("{} is late", hb.name)),
        message: format!(
            "no check-in since {} (expected every {})",
            at(hb.last_ping_at),
            format_duration(hb.every_ms)
        ),
        priority: Some(Priority::High),
        key: Some(key(&hb.name)),
        ..SendRequest::default()
    }
}

/// `<name> is back`: a ping after `late` or `failed`.
pub fn back(name: &str, now: i64) -> SendRequest {
    SendRequest {
        title: Some(format!("{name} is back")),
        message: format!("checked in at {}", at(now)),
        priority: Some(Priority::Default),
        key: Some(key(name)),
        ..SendRequest::default()
    }
}

/// `<name> failed` with the reporter's text (cut to the message cap at a UTF-8 boundary), or
/// a line saying when, if it gave none.
pub fn failed(name: &str, text: Option<&str>, now: i64) -> SendRequest {
    let message = match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => truncate_utf8(text, MAX_MESSAGE_BYTES).to_owned(),
        None => format!("reported a failure at {}", at(now)),
    };
    SendRequest {
        title: Some(format!("{name} failed")),
        message,
        priority: Some(Priority::High),
        key: Some(key(name)),
        ..SendRequest::default()
    }
}

/// `request` as a notification of the relay's own to every reachable device of `user_id`.
pub async fn notification(
    state: &AppState,
    user_id: i64,
    token_id: &str,
    source: &str,
    request: SendRequest,
    now: i64,
) -> Result<NewSend, Failure> {
    let devices = state.store.reachable_devices_of(user_id).await?;
    own_notification(user_id, token_id, source, &devices, request, now)
}

/// One round of the maintenance beat: every heartbeat whose alarm fell due is claimed with
/// its late notification, one commit each; another relay's claim of the same heartbeat makes
/// this one a no-op. Returns how many this relay sent.
pub async fn send_late(state: &AppState) -> Result<usize, Failure> {
    let now = state.clock.now_ms();
    let mut sent = 0;
    for due in state.store.due_heartbeats(now, LATE_BATCH).await? {
        let send = notification(
            state,
            due.user_id,
            &due.token_id,
            &due.source,
            late(&due),
            now,
        )
        .await?;
        if state.store.claim_late_heartbeat(due, send).await? {
            state.metrics.send_accepted();
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HeartbeatState;

    #[test]
    fn the_exact_texts() {
        let hb = HeartbeatRecord {
            user_id: 1,
            name: "backup".into(),
            every_ms: 86_400_000,
            grace_ms: 3_600_000,
            grace_set: false,
            state: HeartbeatState::Up,
            last_ping_at: 1_795_000_000_000,
            token_id: "tok_1".into(),
            source: "cron".into(),
        };
        let late = late(&hb);
        assert_eq!(late.title.as_deref(), Some("backup is late"));
        assert_eq!(
            late.message,
            "no check-in since 2026-11-18T11:06:40Z (expected every 1d)"
        );
        assert_eq!(late.priority, Some(Priority::High));
        assert_eq!(late.key.as_deref(), Some("hb:backup"));
        let back = back("backup", 1_795_000_000_000);
        assert_eq!(back.title.as_deref(), Some("backup is back"));
        assert_eq!(back.priority, Some(Priority::Default));
        assert_eq!(back.key.as_deref(), Some("hb:backup"));
        let failed = failed("backup", Some("disk full"), 0);
        assert_eq!(
            (failed.title.as_deref(), failed.message.as_str()),
            (Some("backup failed"), "disk full")
        );
        assert_eq!(failed.priority, Some(Priority::High));
        assert_eq!(failed.key.as_deref(), Some("hb:backup"));
        let long = "é".repeat(1000);
        assert_eq!(super::failed("b", Some(&long), 0).message.len(), 1500);
    }
}
