//! `POST /v1/hooks/{source}` and `/v1/hooks/{source}/{token}` (SPEC §1.18): a tool's own JSON
//! becomes a send request (`crate::hooks`), which then goes the way of every `/v1/send` — the
//! same extractors in SPEC §1.7 order, the same replay, priority cap, envelope, limits, commit
//! and answer. An unknown source is a 404 before anything is charged or looked up.

use super::AppState;
use super::error::Failure;
use super::extract::{ChargedIp, HookBody, IdempotencyKey, SenderAuth};
use super::limits::binding;
use super::openapi::responses::{
    Refusal, SEND_INTERNAL_ERROR, SEND_RATE_LIMITED, UNAUTHENTICATED, documented,
};
use super::send::{accept, replay};
use crate::api::ErrorCode;
use crate::hooks::{self, Mapped, Overrides};
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::IntoResponses;
use utoipa::openapi::{RefOr, Response as Documented};

/// Where a hook's body comes from: a built-in source or an operator's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookSource {
    Alertmanager,
    Grafana,
    Github,
    Template(String),
}

/// The `{source}` capture, known or 404 `not_found` — first among the extractors, so an
/// unknown source is answered like an unknown route: nothing charged, no token looked up.
impl FromRequestParts<Arc<AppState>> for HookSource {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let not_found = || Failure::new(ErrorCode::NotFound, "no such route; see /openapi.json");
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        let name = params
            .iter()
            .find(|(name, _)| *name == "source")
            .map(|(_, value)| value)
            .ok_or_else(not_found)?;
        match name {
            "alertmanager" => Ok(HookSource::Alertmanager),
            "grafana" => Ok(HookSource::Grafana),
            "github" => Ok(HookSource::Github),
            other if state.hook_templates.has(other) => Ok(HookSource::Template(other.to_owned())),
            _ => Err(not_found()),
        }
    }
}

/// What both hook routes refuse: a send's refusals, with the hook's own body and 404.
struct HookErrors;

impl IntoResponses for HookErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        documented(&[
            Refusal::nested(
                400,
                "`invalid_body`: not JSON or not the tool's shape, or a template failed on it (the message names template and field); or a query override failed its field's rule",
            ),
            UNAUTHENTICATED,
            Refusal::nested(
                403,
                "`priority_capped`: the token may not send this priority",
            ),
            Refusal::nested(404, "`not_found`: no such source"),
            Refusal::nested(
                413,
                "`payload_too_large`: the body exceeds 256 KiB, or the envelope 2048 bytes",
            ),
            SEND_RATE_LIMITED,
            SEND_INTERNAL_ERROR,
        ])
    }
}

#[utoipa::path(post, path = "/v1/hooks/{source}", tag = "hooks", operation_id = "hook",
    summary = "Send a notification from a tool's own webhook JSON",
    description = "`source` is `alertmanager` (webhook v4), `grafana` (its webhook contact point), `github` (the event in `X-GitHub-Event`; JSON, or GitHub's urlencoded form with the JSON in `payload`), or the name of a template the relay's operator defined; any other source is 404 before the token is looked at. The body (up to 256 KiB) is mapped to a send request, which is then sent exactly as `POST /v1/send` sends (same checks in the same order, same limits, same answer). Text over a field's cap is cut with the warning `<field> truncated to <max> bytes`, never refused. A call that sends nothing (a GitHub `ping`, an ignored event) answers 200 with `id` null.",
    params(
        ("source" = crate::server::openapi_schemas::HookSourceName, Path, description = "`alertmanager`, `grafana`, `github`, or the name of a template the relay's operator defined (any other name is 404)"),
        crate::server::openapi_schemas::IdempotencyKey,
        crate::server::openapi_schemas::HookQuery,
        ("X-GitHub-Event" = Option<String>, Header, description = "The GitHub event (required by the `github` source)")),
    request_body(description = "The tool's own JSON (see the operation's description); for `github` also `application/x-www-form-urlencoded` with the JSON in `payload`",
        content(
            (crate::server::openapi_schemas::HookJson = "application/json"),
            (crate::server::openapi_schemas::HookForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Accepted (one delivery enqueued per target device), or nothing to send (`id` null, the warnings say why)", body = crate::server::openapi_schemas::HookResponse),
        HookErrors),
    security(("bearer" = [])))]
pub async fn hook(
    State(state): State<Arc<AppState>>,
    source: HookSource,
    ip: ChargedIp,
    SenderAuth(sender): SenderAuth,
    IdempotencyKey(key): IdempotencyKey,
    extras: HookExtras,
    body: HookBody,
) -> Result<Response, Failure> {
    handle(&state, ip, sender, key, source, extras, body).await
}

/// `POST /v1/hooks/{source}/{token}` is the same handler: `SenderAuth` reads the `{token}`
/// capture when no header is sent. Its operation is [`hook`]'s, documented by
/// `openapi::PATH_TOKEN_TWINS`.
pub use hook as hook_with_path_token;

/// What a hook reads besides its body and credentials: the raw query (the overrides, parsed
/// with the body) and GitHub's `X-GitHub-Event`. Never refuses.
pub struct HookExtras {
    query: Option<String>,
    github_event: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for HookExtras {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(HookExtras {
            query: parts.uri.query().map(str::to_owned),
            github_event: parts
                .headers
                .get("x-github-event")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

async fn handle(
    state: &AppState,
    ip: ChargedIp,
    sender: crate::store::Sender,
    key: Option<String>,
    source: HookSource,
    extras: HookExtras,
    body: HookBody,
) -> Result<Response, Failure> {
    let key = key.as_deref();
    if let Some(replay) = replay(state, &sender.token, key, &ip.statuses, ip.now).await? {
        return Ok(replay.into_response());
    }
    let overrides = Overrides::parse(extras.query.as_deref())?;
    let json = body.json().await?;
    let mapped = match &source {
        HookSource::Alertmanager => hooks::alertmanager::map(&json)?,
        HookSource::Grafana => hooks::grafana::map(&json)?,
        HookSource::Github => hooks::github::map(extras.github_event.as_deref(), &json)?,
        HookSource::Template(name) => Mapped::Send(state.hook_templates.render(name, &json)?),
    };
    let request = match mapped {
        Mapped::Send(request) => request,
        Mapped::Nothing(warnings) => return Ok(nothing_sent(&warnings, &ip)),
    };
    let validated = hooks::finish(request, &overrides, &sender.token.label)?;
    Ok(
        accept(state, sender, validated, ip.statuses, key, None, ip.now)
            .await?
            .into_response(),
    )
}

/// 200 `{"id":null,"delivered_to":[],"warnings":[…]}`, with the binding per-IP layer.
fn nothing_sent(warnings: &[crate::api::Warning], ip: &ChargedIp) -> Response {
    let body = serde_json::json!({
        "id": null,
        "delivered_to": [],
        "warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    let mut headers = HeaderMap::new();
    if let Some(status) = binding(&ip.statuses) {
        super::error::write_rate_headers(&mut headers, &status);
    }
    headers.insert(
        CONTENT_TYPE,
        "application/json".parse().expect("static header"),
    );
    (StatusCode::OK, headers, body.to_string()).into_response()
}
