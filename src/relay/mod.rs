//! The running relay. Its shared context — the store, the clock, the metrics, the wake-ups,
//! channel health and the shutdown signal — is [`Relay`], which `server/` (the HTTP API) and
//! `delivery/` (the workers) both take without importing each other. Above both sit the serve
//! configuration ([`config`]), start-up assembly ([`start`]: lock, store, VAPID key, server,
//! delivery) and the maintenance beat ([`maintenance`]).

pub mod config;
pub mod lock;
pub mod maintenance;
mod metrics;
pub mod retention;
mod start;

pub use config::ServeConfig;
pub use maintenance::{MAINTENANCE_BEAT, maintain_once};
pub use metrics::Metrics;
pub use start::{RunningRelay, start, start_with_clock};

use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::watch;

/// Where time comes from: a seam so delivery and expiry tests can move it.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::store::now_ms()
    }
}

/// What `/health/ready` says about FCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FcmHealth {
    Disabled = 0,
    Ok = 1,
    Failing = 2,
}

impl FcmHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            FcmHealth::Disabled => "disabled",
            FcmHealth::Ok => "ok",
            FcmHealth::Failing => "failing",
        }
    }
}

/// The shared context of one running relay.
/// Events a slow live view may fall behind by before it skips some.
const ADMIN_EVENTS_BUFFER: usize = 1024;

pub struct Relay {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    fcm_health: AtomicU8,
    /// Set once when the relay begins to stop: desktop streams end on it.
    stopping: watch::Sender<bool>,
    /// What `GET /v1/admin/events` streams (SPEC §1.19): this relay's sends and outcomes.
    admin_events: tokio::sync::broadcast::Sender<crate::api::admin::AdminEvent>,
}

impl Relay {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Relay {
        Relay {
            store,
            clock,
            metrics: Metrics::default(),
            fcm_health: AtomicU8::new(FcmHealth::Disabled as u8),
            stopping: watch::Sender::new(false),
            admin_events: tokio::sync::broadcast::Sender::new(ADMIN_EVENTS_BUFFER),
        }
    }

    /// Tells the operator's live views (if any listen) of a send or an outcome.
    pub fn publish_admin(&self, event: crate::api::admin::AdminEvent) {
        // No listener is the usual case, and not an error.
        let _ = self.admin_events.send(event);
    }

    /// A live view's subscription; a view that falls this far behind skips what it missed.
    pub fn admin_events(&self) -> tokio::sync::broadcast::Receiver<crate::api::admin::AdminEvent> {
        self.admin_events.subscribe()
    }

    /// Tells long-lived responses (desktop streams) to end: the relay is stopping.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once [`Relay::begin_shutdown`] has been called.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }

    pub fn fcm_health(&self) -> FcmHealth {
        match self.fcm_health.load(Ordering::Relaxed) {
            1 => FcmHealth::Ok,
            2 => FcmHealth::Failing,
            _ => FcmHealth::Disabled,
        }
    }

    pub fn set_fcm_health(&self, health: FcmHealth) {
        self.fcm_health.store(health as u8, Ordering::Relaxed);
    }
}
