//! Delivery after acceptance (SPEC §1.10). What exists today: accepted jobs are durable in the
//! store and wait there. The FCM HTTP v1 worker and the desktop stream are not built yet, so a
//! relay refuses FCM credentials rather than pretend to deliver.

use crate::api::{ApiError, ErrorCode};
use crate::server::{AppState, FcmHealth, ServeConfig};
use std::sync::Arc;

/// The running delivery side; `stop` drains it.
pub struct Dispatch;

impl Dispatch {
    pub async fn stop(&mut self) {}
}

pub async fn start(config: &ServeConfig, state: Arc<AppState>) -> Result<Dispatch, ApiError> {
    if let Some(path) = &config.fcm_credentials {
        return Err(ApiError::new(
            ErrorCode::CliInternalError,
            format!(
                "FCM dispatch is not built in this version, so --fcm-credentials {} cannot be used yet; \
                 run without it: android deliveries are committed and wait in the queue",
                path.display()
            ),
        ));
    }
    state.set_fcm_health(FcmHealth::Disabled);
    tracing::warn!("FCM disabled (no --fcm-credentials): android deliveries are queued and wait");
    Ok(Dispatch)
}
