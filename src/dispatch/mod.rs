//! Delivery after acceptance (SPEC §1.10). Workers claim due android jobs under a lease, send
//! them through FCM HTTP v1 with bounded concurrency, and record each outcome: delivered,
//! retry later (back-off with jitter, Retry-After honoured), dead-lettered, expired, or the
//! device unpaired. Desktop (extension) jobs are delivered by the relay's own stream
//! (`server::sync`). Without FCM credentials android jobs wait in the queue.

pub mod fcm;
pub mod message;
pub mod outcome;
pub mod webpush;
mod worker;

pub use worker::{Dispatcher, DispatcherSettings};

use crate::api::{ApiError, ErrorCode};
use crate::server::{AppState, FcmHealth, ServeConfig};
use std::sync::Arc;
use tokio::sync::watch;

/// The running delivery side; `stop` lets in-flight deliveries finish, then returns.
pub struct Dispatch {
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Dispatch {
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Starts the FCM workers when credentials are configured; otherwise reports FCM disabled.
pub async fn start(config: &ServeConfig, state: Arc<AppState>) -> Result<Dispatch, ApiError> {
    let Some(path) = &config.fcm_credentials else {
        state.set_fcm_health(FcmHealth::Disabled);
        tracing::warn!(
            "FCM disabled (no --fcm-credentials): android deliveries are queued and wait"
        );
        return Ok(Dispatch {
            stop: None,
            task: None,
        });
    };
    let client = fcm::FcmClient::from_key_file(path, &config.fcm_endpoint)
        .map_err(|e| ApiError::new(ErrorCode::CliInternalError, e))?;
    state.set_fcm_health(FcmHealth::Ok);
    tracing::info!(endpoint = %config.fcm_endpoint, "FCM dispatch enabled");
    let dispatcher = Arc::new(Dispatcher::new(
        state,
        Arc::new(client),
        DispatcherSettings::default(),
    ));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stopped));
    Ok(Dispatch {
        stop: Some(stop),
        task: Some(task),
    })
}
