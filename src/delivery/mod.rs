//! Delivery after acceptance (SPEC §1.10, §1.13). One generic worker claims due jobs under a
//! lease, hands each to its channel — FCM HTTP v1 or Web Push — with bounded concurrency, and
//! records the outcome: delivered, retry later (back-off with jitter, Retry-After honoured),
//! dead-lettered, expired, or the device unreachable. Desktop (extension) jobs are delivered
//! by the relay's own stream (the HTTP API's `/v1/sync`). A channel without its configuration
//! leaves its jobs waiting in the queue; `relay::start` decides which channels run.

pub mod fcm;
pub mod outcome;
pub mod webpush;
mod worker;

pub use crate::store::Channel;
pub use worker::{Channels, DEFAULT_LEASE_SECS, Worker, WorkerSettings};

use std::sync::Arc;
use tokio::sync::watch;

/// The running delivery side; `stop` lets in-flight deliveries finish, then returns.
pub struct Delivery {
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Delivery {
    /// Runs `worker` on its own task until [`Delivery::stop`].
    pub fn spawn(worker: Worker) -> Delivery {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(Arc::new(worker).run(stopped));
        Delivery {
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
