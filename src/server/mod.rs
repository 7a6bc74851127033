//! The relay: `reflecto serve`. All routes and layers are on one screen in [`router`];
//! handlers live one file per area. Handlers never call FCM: they commit jobs and wake the
//! delivery worker.

mod app;
mod auth;
mod body;
pub mod config;
mod error;
pub mod listener;
pub mod lock;
mod messages;
mod observe;
mod openapi;
mod ops;
mod pair;
pub mod retention;
mod send;
mod shim;
mod sync;
mod token;
mod webpush;

pub use crate::relay::Metrics;
pub use crate::store::limits;
pub use config::ServeConfig;
pub use messages::rfc3339 as messages_rfc3339;

use crate::store::{Database, Store};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

pub use crate::relay::{Clock, FcmHealth, Relay, SystemClock};

/// What the HTTP handlers share: the relay context plus what only the API needs. Derefs to
/// [`Relay`], so handlers reach the store, clock and metrics directly.
pub struct AppState {
    pub relay: Arc<Relay>,
    pub trust_proxy: bool,
    /// `--webpush-allow-local`: pairing accepts local and plain-http endpoints.
    pub webpush_allow_local: bool,
    /// What `GET /v1/webpush/vapid` serves; `None` until the store's key is loaded.
    pub vapid_public_key: Option<String>,
    /// token id → when its `last_used_at` was last written.
    touched: Mutex<HashMap<String, i64>>,
    /// How long finished messages are kept; `None` keeps them forever.
    retention_ms: Option<i64>,
}

impl std::ops::Deref for AppState {
    type Target = Relay;

    fn deref(&self) -> &Relay {
        &self.relay
    }
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, trust_proxy: bool) -> AppState {
        AppState {
            relay: Arc::new(Relay::new(store, clock)),
            trust_proxy,
            webpush_allow_local: false,
            vapid_public_key: None,
            touched: Mutex::new(HashMap::new()),
            retention_ms: retention::Retention::DEFAULT.as_ms(),
        }
    }

    /// Sets how long finished messages are kept (the default is 7 days).
    pub fn with_retention(mut self, retention: retention::Retention) -> AppState {
        self.retention_ms = retention.as_ms();
        self
    }

    /// Sets the Web Push side: whether local endpoints may pair, and the VAPID public key.
    pub fn with_webpush(mut self, allow_local: bool, vapid_public_key: String) -> AppState {
        self.webpush_allow_local = allow_local;
        self.vapid_public_key = Some(vapid_public_key);
        self
    }

    /// Step 1 of SPEC §1.7: charges the client's per-IP layers, or refuses with 429.
    pub async fn charge_ip(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Vec<limits::LayerStatus>, error::Failure> {
        self.store
            .charge_ip(client_ip(self, peer, headers), now)
            .await?
            .map_err(|refused| error::Failure::rate_limited(refused, now))
    }

    /// Whether this send should update the token's `last_used_at` (at most once a minute).
    fn should_touch(&self, token_id: &str, now: i64) -> bool {
        let mut touched = self.touched.lock().expect("touch map poisoned");
        match touched.get(token_id) {
            Some(&at) if now - at < 60_000 => false,
            _ => {
                touched.insert(token_id.to_owned(), now);
                true
            }
        }
    }
}

/// The peer address, or with `--trust-proxy` the address the proxy appended to
/// `X-Forwarded-For` (its last entry).
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if state.trust_proxy
        && let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(ip) = forwarded
            .rsplit(',')
            .next()
            .and_then(|s| s.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

/// Every route and layer of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/send", post(send::send))
        .route("/v1/send/{token}", post(send::send_with_path_token))
        .route("/v1/messages.json", post(shim::messages_json))
        .route("/1/messages.json", post(shim::messages_json))
        .route("/v1/messages/{id}", get(messages::message_status))
        .route("/v1/devices/pair", post(pair::pair))
        .route("/v1/sync", get(sync::stream))
        .route("/v1/sync/ack", post(sync::ack))
        .route("/v1/token", get(token::token_info))
        .route("/v1/webpush/vapid", get(webpush::vapid))
        .route("/app", get(app::redirect))
        .route("/app/", get(app::index))
        .route("/app/{file}", get(app::file))
        .route("/health", get(ops::live))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/.well-known/api-catalog", get(ops::api_catalog))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// A relay bound and serving; dropping `shutdown` (or sending on it) stops it gracefully.
pub struct RunningRelay {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub shutdown: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Locks the data dir, opens the store, restores the persistent limits, binds and serves
/// until `shutdown`; the lock is released when serving has ended.
pub async fn start(config: &ServeConfig) -> Result<RunningRelay, crate::api::ApiError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with time from `clock`, so tests can move it (expiry, retention, back-off).
pub async fn start_with_clock(
    config: &ServeConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningRelay, crate::api::ApiError> {
    let db = config.database()?;
    // One relay owns an SQLite data dir; relays on a shared database need no lock.
    let lock = match &db {
        Database::Sqlite(dir) => Some(lock::acquire(dir)?),
        Database::Postgres(_) => None,
    };
    let now = clock.now_ms();
    let store = Store::open(&db, config.limits, now)
        .await
        .map_err(|e| db.open_failed(e))?;
    let vapid = crate::delivery::webpush::load_vapid_key(&store, now)
        .await
        .map_err(startup_error)?;
    let state = Arc::new(
        AppState::new(store, clock, config.trust_proxy)
            .with_retention(config.retention)
            .with_webpush(config.webpush_allow_local, vapid.public_key_b64()),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| startup_error(format!("binding {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| startup_error(e.to_string()))?;
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
    })
}

fn startup_error(message: String) -> crate::api::ApiError {
    crate::api::ApiError::new(crate::api::ErrorCode::CliInternalError, message)
}

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
    state.store.sweep_limits(now).await?;
    state.store.expire_jobs(now).await?;
    if let Some(retention) = state.retention_ms {
        while state
            .store
            .prune_finished(now.saturating_sub(retention), PRUNE_BATCH)
            .await?
            == PRUNE_BATCH
        {}
    }
    state.store.prune(now).await
}

fn spawn_maintenance(state: Arc<AppState>) {
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
