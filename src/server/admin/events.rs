//! `GET /v1/admin/events` (SPEC §1.19): this relay's accepted sends and delivery outcomes as
//! Server-Sent Events, for live views such as the console. Each event's `data` is an
//! [`AdminEvent`]; a view that falls more than the buffer behind skips what it missed.

use crate::api::admin::AdminEvent;
use crate::server::AppState;
use crate::server::error::Failure;
use crate::server::extract::AdminAuth;
use crate::server::openapi::responses::AdminErrors;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[utoipa::path(get, path = "/v1/admin/events", tag = "admin", operation_id = "admin_events",
    summary = "Live sends and delivery outcomes (Server-Sent Events)",
    description = "One event per send this relay accepts (`{\"type\":\"send\",\"id\",\"user\",\"devices\"}`) and per delivery outcome its worker records (`{\"type\":\"delivery\",\"id\",\"device_id\",\"state\"}`, `state` `delivered`, `failed` or `expired`). Keep-alive comments every 15 s. Only this relay's events: behind a load balancer, each relay streams its own.",
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's `data` is this object", content_type = "text/event-stream", body = AdminEvent),
        AdminErrors),
    security(("admin" = [])))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    _auth: AdminAuth,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let receiver = state.admin_events();
    let stream = futures_util::stream::unfold((state, receiver), |(state, mut rx)| async move {
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                () = state.stopping() => return None,
            };
            match next {
                Ok(event) => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    return Some((Ok(Event::default().data(data)), (state, rx)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
