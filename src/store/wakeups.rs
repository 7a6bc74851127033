//! Wake-ups after a commit: the delivery worker when jobs became due, the desktop streams
//! of the devices that got an event, and the status long polls when a delivery changed. In-process `Notify`s; on PostgreSQL the store also feeds
//! them from `LISTEN`, so a send accepted by another relay wakes this relay's streams.

use super::model::{Channel, Target};
use crate::api::DeviceType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

#[derive(Default)]
pub struct Wakeups {
    deliveries: Notify,
    /// The channels this process's delivery worker sends through: a commit wakes it only
    /// for jobs it can deliver (a relay without FCM need not look at every android send).
    worker_channels: Mutex<Vec<Channel>>,
    /// One `Notify` per device with an open stream, shared by that device's streams.
    streams: Mutex<HashMap<String, Arc<Notify>>>,
    /// Every held `GET /v1/messages/{id}`: one for all, since a delivery's outcome, an ack and
    /// an expiry each know jobs, not the messages being watched; a waiter re-reads its own.
    statuses: Notify,
}

impl Wakeups {
    /// Resolves after the next [`Wakeups::wake_deliveries`] (a wake-up sent while nobody
    /// waits is kept for the next waiter).
    pub fn deliveries(&self) -> Notified<'_> {
        self.deliveries.notified()
    }

    pub fn wake_deliveries(&self) {
        self.deliveries.notify_one();
    }

    /// Called by the delivery worker when it starts: the channels it works.
    pub fn set_worker_channels(&self, channels: &[Channel]) {
        *self.worker_channels.lock().expect("wake-ups poisoned") = channels.to_vec();
    }

    /// The wake-up of one device's streams. Create its `notified()` before reading the
    /// device's events, so a commit in between is not missed.
    pub fn stream(&self, device_id: &str) -> Arc<Notify> {
        let mut streams = self.streams.lock().expect("wake-ups poisoned");
        // Forget devices whose streams all ended: the map stays as small as the open streams.
        streams.retain(|_, notify| Arc::strong_count(notify) > 1);
        streams.entry(device_id.to_owned()).or_default().clone()
    }

    pub fn wake_streams<'a>(&self, devices: impl IntoIterator<Item = &'a str>) {
        let streams = self.streams.lock().expect("wake-ups poisoned");
        for device in devices {
            if let Some(notify) = streams.get(device) {
                notify.notify_waiters();
            }
        }
    }

    /// Resolves after the next [`Wakeups::wake_statuses`] following its creation (create it
    /// before reading the status, so a change in between is not missed).
    pub fn statuses(&self) -> Notified<'_> {
        self.statuses.notified()
    }

    /// Some delivery changed state (an outcome, an ack, an expiry, a removed device): the
    /// held status requests look again.
    pub fn wake_statuses(&self) {
        self.statuses.notify_waiters();
    }

    /// Every stream and the worker: after wake-ups may have been lost (a listener reconnect).
    pub fn wake_all(&self) {
        self.wake_deliveries();
        let streams = self.streams.lock().expect("wake-ups poisoned");
        streams.values().for_each(|notify| notify.notify_waiters());
    }

    /// After a send committed: the worker if one of its channels has work, the streams of
    /// the desktop targets.
    pub fn after_accept(&self, targets: &[Target]) {
        let worked = self.worker_channels.lock().expect("wake-ups poisoned");
        if targets
            .iter()
            .filter_map(|t| Channel::of(t.device_type))
            .any(|c| worked.contains(&c))
        {
            self.wake_deliveries();
        }
        drop(worked);
        self.wake_streams(
            targets
                .iter()
                .filter(|t| t.device_type == DeviceType::Extension)
                .map(|t| t.device_id.as_str()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_only_the_devices_named() {
        let wakeups = Wakeups::default();
        let a = wakeups.stream("dev_a");
        let b = wakeups.stream("dev_b");
        let woken_a = a.notified();
        let woken_b = b.notified();
        wakeups.after_accept(&[Target::clear("dev_a".into(), DeviceType::Extension)]);
        tokio::pin!(woken_a, woken_b);
        assert!(futures_util::poll!(woken_a.as_mut()).is_ready());
        assert!(futures_util::poll!(woken_b.as_mut()).is_pending());
    }

    /// Whether a worker of `channels` is woken by an accept for an android device.
    async fn a_worker_of(channels: &[Channel]) -> bool {
        let wakeups = Wakeups::default();
        wakeups.set_worker_channels(channels);
        wakeups.after_accept(&[Target::clear("dev_p".into(), DeviceType::Android)]);
        let woken = wakeups.deliveries();
        tokio::pin!(woken);
        futures_util::poll!(woken.as_mut()).is_ready()
    }

    #[tokio::test]
    async fn a_wake_for_the_worker_waits_for_it() {
        assert!(a_worker_of(&[Channel::Fcm]).await);
    }

    #[tokio::test]
    async fn a_status_change_wakes_every_waiter_registered_before_it() {
        let wakeups = Wakeups::default();
        let first = wakeups.statuses();
        let second = wakeups.statuses();
        wakeups.wake_statuses();
        let late = wakeups.statuses();
        tokio::pin!(first, second, late);
        assert!(futures_util::poll!(first.as_mut()).is_ready());
        assert!(futures_util::poll!(second.as_mut()).is_ready());
        assert!(
            futures_util::poll!(late.as_mut()).is_pending(),
            "nothing is kept"
        );
    }

    #[tokio::test]
    async fn a_worker_is_not_woken_for_a_channel_it_lacks() {
        assert!(!a_worker_of(&[Channel::WebPush]).await);
    }
}
