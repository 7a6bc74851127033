//! Wake-ups from other relays: one connection per relay `LISTEN`s on [`super::WAKE_CHANNEL`]
//! and turns each notification into the in-process wake-ups of the devices it names.
//! Notifications sent while it reconnects are lost, so after every (re)connect everything
//! is woken once, and streams and workers also poll (`Store::poll_interval`).

use super::WAKE_CHANNEL;
use super::connect::Target;
use crate::store::Wakeups;
use std::sync::Weak;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

pub async fn listen(target: Target, wakeups: Weak<Wakeups>) {
    let mut failures = 0u32;
    loop {
        match target.connect_listening().await {
            Ok((client, mut messages)) => {
                if let Err(e) = client
                    .batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
                    .await
                {
                    tracing::warn!(error = %crate::store::StoreError::from(e), "LISTEN failed");
                } else {
                    failures = 0;
                    match wakeups.upgrade() {
                        Some(w) => w.wake_all(),
                        None => return,
                    }
                    while let Some(message) = messages.recv().await {
                        let AsyncMessage::Notification(note) = message else {
                            continue;
                        };
                        let Some(w) = wakeups.upgrade() else { return };
                        wake(&w, note.payload());
                    }
                    tracing::warn!("the wake-up connection to PostgreSQL closed; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "connecting for wake-ups failed; retrying"),
        }
        if wakeups.strong_count() == 0 {
            return;
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(crate::backoff::jittered(
            Duration::from_millis(200),
            Duration::from_secs(5),
            failures,
        ))
        .await;
    }
}

/// Applies one payload (see [`WAKE_CHANNEL`]): its first word is a bit set — 1: workers have
/// work, 2: a message's status changed (a held long poll answers) — then the desktop devices
/// that got an event, or `*` for all.
pub fn wake(wakeups: &Wakeups, payload: &str) {
    let mut parts = payload.split(' ');
    let bits: u8 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if bits & DELIVERIES != 0 {
        wakeups.wake_deliveries();
    }
    if bits & STATUSES != 0 {
        wakeups.wake_statuses();
    }
    let devices: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    if devices.contains(&"*") {
        wakeups.wake_all();
    } else {
        wakeups.wake_streams(devices);
    }
}

/// Bit of a payload's first word: a worker has work.
const DELIVERIES: u8 = 1;
/// Bit of a payload's first word: a message's status changed (an acknowledgement, a clear).
const STATUSES: u8 = 2;

/// The payload for a commit that gave work to a worker (`deliveries`), changed a status that
/// a long poll may hold (`statuses`), and gave events to these desktop devices; `None` when
/// nobody needs waking. NOTIFY payloads are capped below 8000 bytes: a send to very many
/// devices wakes all streams instead.
pub fn payload<'a>(
    deliveries: bool,
    statuses: bool,
    devices: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let bits = if deliveries { DELIVERIES } else { 0 } | if statuses { STATUSES } else { 0 };
    let mut out = bits.to_string();
    let mut any = bits != 0;
    for device in devices {
        any = true;
        if out.len() + device.len() + 1 > 7000 {
            out.truncate(1);
            out.push_str(" *");
            break;
        }
        out.push(' ');
        out.push_str(device);
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names_devices_and_caps_its_size() {
        assert_eq!(payload(false, false, std::iter::empty()), None);
        assert_eq!(
            payload(true, false, std::iter::empty()).as_deref(),
            Some("1")
        );
        assert_eq!(
            payload(false, true, std::iter::empty()).as_deref(),
            Some("2")
        );
        assert_eq!(
            payload(true, true, std::iter::empty()).as_deref(),
            Some("3")
        );
        assert_eq!(
            payload(false, false, ["dev_a", "dev_b"].into_iter()).as_deref(),
            Some("0 dev_a dev_b")
        );
        let many: Vec<String> = (0..1000).map(|i| format!("dev_{i:016x}")).collect();
        let capped = payload(true, false, many.iter().map(String::as_str)).unwrap();
        assert_eq!(capped, "1 *");
    }
}
