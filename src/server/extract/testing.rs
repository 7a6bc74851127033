//! What the extractor tests share: a relay state on a fresh SQLite store in a temp dir, a
//! token and a device in it, and request parts built by hand.

use crate::api::DeviceType;
use crate::server::{AppState, SystemClock};
use crate::store::limits::Limits;
use crate::store::{Database, NewDevice, NewToken, Store};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::http::request::Parts;
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer every hand-built request comes from.
pub const PEER: &str = "192.0.2.1:40000";

pub async fn relay_state(limits: Limits, trust_proxy: bool) -> (tempfile::TempDir, Arc<AppState>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Database::Sqlite(dir.path().to_path_buf()), limits, 0)
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(SystemClock), trust_proxy);
    (dir, Arc::new(state))
}

/// A relay trusting no proxy, allowing `per_minute` requests a minute from one IP.
pub async fn ip_minute(per_minute: u64) -> (tempfile::TempDir, Arc<AppState>) {
    let limits = Limits {
        ip_minute: per_minute,
        ..Limits::default()
    };
    relay_state(limits, false).await
}

/// A sender token for user `alice` (created with her).
pub async fn token(state: &AppState) -> String {
    state.store.add_user("alice", 0).await.unwrap();
    let new = NewToken {
        user: "alice".into(),
        label: "ci".into(),
        priority_cap: None,
        scope_devices: None,
        test: false,
    };
    let (_, secret) = state.store.create_token(new, 0).await.unwrap();
    secret.expose().to_owned()
}

/// A paired device of `alice` (who must exist) and its credential.
pub async fn device(state: &AppState, device_type: DeviceType) -> String {
    let new = NewDevice {
        label: "desk".into(),
        device_type,
        fcm_token: (device_type == DeviceType::Android).then(|| "fcm".into()),
        public_key: None,
        webpush: None,
    };
    let paired = state.store.add_device("alice", new, 0).await.unwrap();
    paired.credential.expose().to_owned()
}

/// The parts of a GET to `uri` from [`PEER`] with `headers`.
pub fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    request(uri, headers, "").into_parts().0
}

pub fn request(uri: &str, headers: &[(&str, &str)], body: &str) -> Request<axum::body::Body> {
    let mut builder = Request::builder().uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let peer: SocketAddr = PEER.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}
