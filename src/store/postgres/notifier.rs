//! Telling the other relays about new work: one `NOTIFY` per batch of commits. A transaction
//! that notifies takes a database-wide lock while it commits, so a `pg_notify` inside every
//! accept would serialize all sends of all relays; instead each relay queues what its commits
//! woke (whether workers have work, which desktop devices got an event) and one task sends it,
//! merged, as soon as the previous notification is out. Under load that is one notification
//! per round trip, not one per send. If the relay dies between a commit and its
//! notification, the other relays' 1 s poll finds the work.

use super::WAKE_CHANNEL;
use super::listener::payload;
use crate::api::DeviceType;
use crate::store::model::Target;
use deadpool_postgres::Pool;
use std::collections::BTreeSet;
use tokio::sync::mpsc;

/// What one commit woke.
struct Woken {
    deliveries: bool,
    /// A message's status changed: another relay's held long polls answer now.
    statuses: bool,
    devices: Vec<String>,
}

pub struct Notifier {
    tx: mpsc::UnboundedSender<Woken>,
}

impl Notifier {
    /// Starts the sending task on `pool`; it ends when the notifier is dropped.
    pub fn start(pool: Pool) -> Notifier {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(pool, rx));
        Notifier { tx }
    }

    pub fn after_accept(&self, targets: &[Target]) {
        self.queue(Self::woken_by(targets));
    }

    /// After a clear or an acknowledgement: the clear jobs it queued, and the status it
    /// changed, which `reflecto ask` may be waiting for on another relay.
    pub fn after_status_change(&self, targets: &[Target]) {
        self.queue(Woken {
            statuses: true,
            ..Self::woken_by(targets)
        });
    }

    fn woken_by(targets: &[Target]) -> Woken {
        Woken {
            statuses: false,
            deliveries: targets
                .iter()
                .any(|t| t.device_type != DeviceType::Extension),
            devices: targets
                .iter()
                .filter(|t| t.device_type == DeviceType::Extension)
                .map(|t| t.device_id.clone())
                .collect(),
        }
    }

    fn queue(&self, woken: Woken) {
        if woken.deliveries || woken.statuses || !woken.devices.is_empty() {
            // Only fails once the store is gone: nobody is left to wake.
            let _ = self.tx.send(woken);
        }
    }
}

async fn send_batches(pool: Pool, mut rx: mpsc::UnboundedReceiver<Woken>) {
    while let Some(first) = rx.recv().await {
        let mut deliveries = first.deliveries;
        let mut statuses = first.statuses;
        let mut devices: BTreeSet<String> = first.devices.into_iter().collect();
        while let Ok(more) = rx.try_recv() {
            deliveries |= more.deliveries;
            statuses |= more.statuses;
            devices.extend(more.devices);
        }
        let Some(text) = payload(deliveries, statuses, devices.iter().map(String::as_str)) else {
            continue;
        };
        let sent = async {
            let client = pool.get().await.map_err(super::connect::pool_error)?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&WAKE_CHANNEL, &text])
                .await?;
            Ok::<_, crate::store::StoreError>(())
        }
        .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "telling the other relays about new work failed; they find it by polling");
        }
    }
}
