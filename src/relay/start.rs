//! Start-up assembly of one running relay: the data-dir lock, the store, the VAPID key (loaded
//! once, for both the API's public key and the Web Push signer), the HTTP server, maintenance,
//! and on request the delivery worker over the configured channels.

use super::config::ServeConfig;
use super::maintenance::spawn_maintenance;
use super::{Clock, FcmHealth, SystemClock, lock};
use crate::api::{ApiError, ErrorCode};
use crate::delivery::webpush::vapid::{Subject, VapidKey, VapidSigner};
use crate::delivery::webpush::{WebPushChannel, client::WebPushClient, load_vapid_key};
use crate::delivery::{Channels, Delivery, Worker, WorkerSettings, fcm};
use crate::server::{AppState, listener, router};
use crate::store::{Database, Store};
use std::net::SocketAddr;
use std::sync::Arc;

/// One Web Push attempt, connection included; push services answer in well under a second.
const WEBPUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A relay bound and serving; dropping `shutdown` (or sending on it) stops it gracefully.
pub struct RunningRelay {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub shutdown: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The relay's VAPID key as loaded at start, for the Web Push channel.
    pub vapid: VapidKey,
}

/// Locks the data dir, opens the store, restores the persistent limits, binds and serves
/// until `shutdown`; the lock is released when serving has ended.
pub async fn start(config: &ServeConfig) -> Result<RunningRelay, ApiError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with time from `clock`, so tests can move it (expiry, retention, back-off).
pub async fn start_with_clock(
    config: &ServeConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningRelay, ApiError> {
    // A broken template stops the relay before it locks or opens anything.
    let templates = crate::hooks::Templates::compile(&config.hooks).map_err(|e| {
        ApiError::new(
            ErrorCode::UsageError,
            format!("hook templates in the config file: {e}"),
        )
    })?;
    let db = config.database()?;
    let public_url = config.public_url()?;
    // One relay owns an SQLite data dir; relays on a shared database need no lock.
    let lock = match &db {
        Database::Sqlite(dir) => Some(lock::acquire(dir)?),
        Database::Postgres(_) => None,
    };
    let now = clock.now_ms();
    let store = Store::open(&db, config.limits, now)
        .await
        .map_err(|e| db.open_failed(e))?;
    let vapid = load_vapid_key(&store, now).await.map_err(startup_error)?;
    let state = Arc::new(
        AppState::new(store, clock, config.trust_proxy)
            .with_retention(config.retention)
            .with_webpush(config.webpush_allow_local, vapid.public_key_b64())
            .with_hook_templates(templates)
            .with_callbacks(config.callback_allow_local)
            .with_public_url(public_url),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| startup_error(format!("binding {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| startup_error(e.to_string()))?;
    if let Some(lock) = &lock {
        lock.record_address(addr)
            .map_err(|e| startup_error(format!("recording the listen address: {e}")))?;
    }
    spawn_maintenance(state.clone());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    let stopping = state.clone();
    let connections = config.connections;
    let task = tokio::spawn(async move {
        let served = listener::serve(listener, app, connections, async move {
            let _ = stopped.await;
            stopping.begin_shutdown();
        })
        .await;
        drop(lock);
        served
    });
    Ok(RunningRelay {
        addr,
        state,
        shutdown,
        task,
        vapid,
    })
}

impl RunningRelay {
    /// Starts the delivery worker over every channel: FCM when credentials are configured,
    /// Web Push always (it needs nothing but the key loaded at start and `subject`, checked
    /// once by the caller before anything listened).
    pub fn start_delivery(
        &self,
        config: &ServeConfig,
        subject: Subject,
    ) -> Result<Delivery, ApiError> {
        let relay = self.state.relay.clone();
        let mut channels = Channels::default();
        match &config.fcm_credentials {
            Some(path) => {
                let client = fcm::FcmClient::from_key_file(path, &config.fcm_endpoint)
                    .map_err(startup_error)?;
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
        let client = WebPushClient::new(WEBPUSH_TIMEOUT, config.webpush_allow_local)
            .map_err(startup_error)?;
        channels.webpush = Some(Arc::new(WebPushChannel::new(
            client,
            VapidSigner::new(self.vapid.clone(), subject),
        )));
        let settings = WorkerSettings {
            lease_ms: config.lease_secs.saturating_mul(1000) as i64,
            ..WorkerSettings::default()
        };
        Ok(Delivery::spawn(Worker::new(relay, channels, settings)))
    }
}

fn startup_error(message: String) -> ApiError {
    ApiError::new(ErrorCode::CliInternalError, message)
}
