//! The relay's HTTP API. All routes and layers are on one screen in [`router`]; handlers live
//! one file per area. Handlers never call FCM: they commit jobs and wake the delivery worker.
//! Starting the relay (store, lock, delivery, maintenance) is `relay::start`.

mod acknowledge;
pub mod admin;
mod app;
mod clear;
mod console;
mod error;
mod extract;
pub(crate) mod heartbeats;
mod home;
mod hooks;
pub mod listener;
mod messages;
mod observe;
mod openapi;
mod openapi_schemas;
mod ops;
mod pair;
mod receipts;
mod send;
mod shim;
mod sync;
mod token;
mod webpush;

pub use crate::relay::Metrics;
pub use crate::store::limits;
pub use messages::rfc3339 as messages_rfc3339;

use crate::relay::retention;
use crate::store::Store;
use axum::Router;
use axum::routing::{delete, get, post};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::relay::{Clock, FcmHealth, Relay, SystemClock};

/// What the HTTP handlers share: the relay context plus what only the API needs. Derefs to
/// [`Relay`], so handlers reach the store, clock and metrics directly.
pub struct AppState {
    pub relay: Arc<Relay>,
    pub trust_proxy: bool,
    /// `--webpush-allow-local`: pairing accepts local and plain-http endpoints.
    pub webpush_allow_local: bool,
    /// `--callback-allow-local`: callbacks may be plain http and reach local addresses.
    pub callback_allow_local: bool,
    /// What `GET /v1/webpush/vapid` serves; `None` until the store's key is loaded.
    pub vapid_public_key: Option<String>,
    /// `--public-url`, checked and without a trailing slash: where pairing links point;
    /// `None`: the request's own origin.
    pub public_url: Option<String>,
    /// token id → when its `last_used_at` was last written.
    touched: Mutex<HashMap<String, i64>>,
    /// How long finished messages are kept; `None` keeps them forever.
    retention_ms: Option<i64>,
    /// The operator's hook templates (`[hooks.<name>]`, SPEC §1.18), compiled at start-up.
    pub hook_templates: crate::hooks::Templates,
    /// When this relay started (`GET /v1/admin/status`).
    pub started_at: i64,
}

impl std::ops::Deref for AppState {
    type Target = Relay;

    fn deref(&self) -> &Relay {
        &self.relay
    }
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, trust_proxy: bool) -> AppState {
        let started_at = clock.now_ms();
        AppState {
            started_at,
            relay: Arc::new(Relay::new(store, clock)),
            trust_proxy,
            webpush_allow_local: false,
            callback_allow_local: false,
            vapid_public_key: None,
            public_url: None,
            touched: Mutex::new(HashMap::new()),
            retention_ms: retention::Retention::DEFAULT.as_ms(),
            hook_templates: crate::hooks::Templates::default(),
        }
    }

    /// Sets the operator's hook templates.
    pub fn with_hook_templates(mut self, templates: crate::hooks::Templates) -> AppState {
        self.hook_templates = templates;
        self
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

    /// Sets whether callbacks may be plain http and reach local addresses (tests).
    pub fn with_callbacks(mut self, allow_local: bool) -> AppState {
        self.callback_allow_local = allow_local;
        self
    }

    /// Sets `--public-url`, the base of pairing links (already checked with
    /// `qr::check_public_url`).
    pub fn with_public_url(mut self, url: Option<String>) -> AppState {
        self.public_url = url;
        self
    }

    /// How long finished messages are kept; `None` keeps them forever.
    pub fn retention_ms(&self) -> Option<i64> {
        self.retention_ms
    }

    /// Whether this send should update the token's `last_used_at` (at most once a minute).
    pub(crate) fn should_touch(&self, token_id: &str, now: i64) -> bool {
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

/// Every route and layer of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/send", post(send::send))
        .route("/v1/send/{token}", post(send::send_with_path_token))
        .route("/v1/hooks/{source}", post(hooks::hook))
        .route(
            "/v1/hooks/{source}/{token}",
            post(hooks::hook_with_path_token),
        )
        .route("/v1/messages.json", post(shim::messages_json))
        .route("/1/messages.json", post(shim::messages_json))
        // `{receipt}` is `<receipt>.json`: the router takes no suffix after a parameter.
        .route("/1/receipts/{receipt}", get(receipts::receipt))
        .route("/1/receipts/{receipt}/cancel.json", post(receipts::cancel))
        .route(
            "/v1/messages/{id}",
            get(messages::message_status).delete(clear::clear_message),
        )
        .route(
            "/v1/messages/{id}/acknowledge",
            post(acknowledge::acknowledge),
        )
        .route("/v1/keys/{key}", delete(clear::clear_key))
        .route("/v1/heartbeats", get(heartbeats::list))
        .route(
            "/v1/heartbeats/{name}",
            post(heartbeats::ping).delete(heartbeats::delete),
        )
        .route("/v1/heartbeats/{name}/fail", post(heartbeats::fail))
        .route("/v1/devices/pair", post(pair::pair))
        .route("/v1/sync", get(sync::stream))
        .route("/v1/sync/ack", post(sync::ack))
        .route("/v1/token", get(token::token_info))
        .route("/v1/webpush/vapid", get(webpush::vapid))
        .route("/v1/admin/status", get(admin::status))
        .route(
            "/v1/admin/users",
            get(admin::list_users).post(admin::add_user),
        )
        .route("/v1/admin/users/{name}", delete(admin::remove_user))
        .route(
            "/v1/admin/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route("/v1/admin/devices", get(admin::list_devices))
        .route("/v1/admin/devices/{id}", delete(admin::remove_device))
        .route("/v1/admin/pairings", post(admin::pair))
        .route("/v1/admin/messages", get(admin::messages))
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/admin/events", get(admin::events))
        .route("/", get(home::page))
        .route("/app", get(app::redirect))
        .route("/app/", get(app::index))
        .route("/app/{file}", get(app::file))
        .route("/admin", get(console::redirect))
        .route("/admin/", get(console::index))
        .route("/admin/{file}", get(console::file))
        .route("/health", get(ops::live))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/.well-known/api-catalog", get(ops::api_catalog))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
