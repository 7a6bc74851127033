//! Delivery after acceptance (SPEC §1.10, §1.13). One generic worker claims due jobs under a
//! lease, hands each to its channel — FCM HTTP v1 or Web Push — with bounded concurrency, and
//! records the outcome: delivered, retry later (back-off with jitter, Retry-After honoured),
//! dead-lettered, expired, or the device unreachable. Desktop (extension) jobs are delivered
//! by the relay's own stream (`server::sync`). A channel without its configuration leaves its
//! jobs waiting in the queue.

pub mod fcm;
pub mod outcome;
pub mod webpush;
mod worker;

pub use crate::store::Channel;
pub use worker::{Channels, Worker, WorkerSettings};

use crate::api::{ApiError, ErrorCode};
use crate::relay::{FcmHealth, Relay};
use crate::server::ServeConfig;
use std::sync::Arc;
use tokio::sync::watch;

/// The running delivery side; `stop` lets in-flight deliveries finish, then returns.
pub struct Delivery {
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Delivery {
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// One Web Push attempt, connection included; push services answer in well under a second.
const WEBPUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the worker over every channel: FCM when credentials are configured, Web Push always
/// (it needs nothing but the relay's own VAPID key).
pub async fn start(config: &ServeConfig, relay: Arc<Relay>) -> Result<Delivery, ApiError> {
    let mut channels = Channels::default();
    match &config.fcm_credentials {
        Some(path) => {
            let client = fcm::FcmClient::from_key_file(path, &config.fcm_endpoint)
                .map_err(|e| ApiError::new(ErrorCode::CliInternalError, e))?;
            relay.set_fcm_health(FcmHealth::Ok);
            tracing::info!(endpoint = %config.fcm_endpoint, "FCM delivery enabled");
            channels.fcm = Some(Arc::new(fcm::FcmChannel::new(client)));
        }
        None => {
            relay.set_fcm_health(FcmHealth::Disabled);
            tracing::warn!(
                "FCM disabled (no --fcm-credentials): android deliveries are queued and wait"
            );
        }
    }
    let subject = webpush::vapid::Subject::parse(&config.vapid_subject).map_err(|e| {
        ApiError::new(
            ErrorCode::UsageError,
            format!("--vapid-subject '{}': {e}", config.vapid_subject),
        )
    })?;
    let key = webpush::load_vapid_key(&relay.store, relay.clock.now_ms())
        .await
        .map_err(|e| ApiError::new(ErrorCode::CliInternalError, e))?;
    let client = webpush::client::WebPushClient::new(WEBPUSH_TIMEOUT, config.webpush_allow_local)
        .map_err(|e| ApiError::new(ErrorCode::CliInternalError, e))?;
    channels.webpush = Some(Arc::new(webpush::WebPushChannel::new(
        client,
        webpush::vapid::VapidSigner::new(key, subject),
    )));
    let settings = WorkerSettings {
        lease_ms: config.lease_secs.saturating_mul(1000) as i64,
        ..WorkerSettings::default()
    };
    let worker = Arc::new(Worker::new(relay, channels, settings));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(worker.run(stopped));
    Ok(Delivery {
        stop: Some(stop),
        task: Some(task),
    })
}
