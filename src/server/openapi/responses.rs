//! The refusals many routes share, each worded once for the document. A route lists the set it
//! can give (`responses((status = 200, …), SenderErrors)`) beside its own answers, so the same
//! refusal reads the same on every route and a new route cannot word it differently by accident.

use crate::api::{FlatErrorBody, NestedErrorBody, ShimResponse};
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

/// The body a refusal carries: SPEC §1.6's nested or flat (401) error, or the Pushover shim's
/// `{"status":0,"errors":[…]}`.
#[derive(Clone, Copy)]
pub enum Body {
    Nested,
    Flat,
    Shim,
}

/// One documented refusal: its status, its body and what it says.
pub struct Refusal(u16, Body, &'static str);

impl Refusal {
    pub const fn nested(status: u16, description: &'static str) -> Refusal {
        Refusal(status, Body::Nested, description)
    }

    pub const fn flat(status: u16, description: &'static str) -> Refusal {
        Refusal(status, Body::Flat, description)
    }

    pub const fn shim(status: u16, description: &'static str) -> Refusal {
        Refusal(status, Body::Shim, description)
    }
}

pub const UNAUTHENTICATED: Refusal = Refusal::flat(401, "`missing_token` or `invalid_token`");
pub const ADMIN_TOKEN_REFUSED: Refusal = Refusal::nested(
    403,
    "`forbidden`: an admin token, which cannot act as a sender (SPEC §1.19)",
);
pub const NOT_FOUND: Refusal = Refusal::nested(404, "`not_found`");
pub const PER_IP_LIMITED: Refusal = Refusal::nested(429, "`rate_limit_exceeded` (per-IP layers)");
pub const INTERNAL_ERROR: Refusal = Refusal::nested(500, "`internal_error`");
/// A send's (and a hook's) 429 and 500: any layer can bind, and a 500 acknowledged nothing.
pub const SEND_RATE_LIMITED: Refusal = Refusal::nested(
    429,
    "`rate_limit_exceeded`; `details.resource` names the layer",
);
pub const SEND_INTERNAL_ERROR: Refusal = Refusal::nested(
    500,
    "`internal_error`: the store failed; nothing was acknowledged",
);
/// The operator API's wording (and `GET /v1/token`'s).
pub const TOKEN_REFUSED: Refusal =
    Refusal::flat(401, "missing, malformed, unknown or revoked token");
pub const SENDER_TOKEN_REFUSED: Refusal = Refusal::nested(403, "`forbidden`: a sender token");
pub const RELAY_FAILED: Refusal = Refusal::nested(500, "the relay failed");
/// The Pushover shim's answers.
pub const SHIM_UNAUTHENTICATED: Refusal = Refusal::shim(401, "`missing_token` or `invalid_token`");
pub const SHIM_INVALID_BODY: Refusal = Refusal::shim(400, "`invalid_body`");
pub const SHIM_RATE_LIMITED: Refusal = Refusal::shim(429, "`rate_limit_exceeded`");
pub const SHIM_INTERNAL_ERROR: Refusal = Refusal::shim(500, "`internal_error`");

/// The refusals as utoipa's responses, keyed by status.
pub fn documented(refusals: &[Refusal]) -> BTreeMap<String, RefOr<Response>> {
    refusals
        .iter()
        .map(|Refusal(status, body, description)| {
            let schema = match body {
                Body::Nested => NestedErrorBody::name(),
                Body::Flat => FlatErrorBody::name(),
                Body::Shim => ShimResponse::name(),
            };
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// What every operator route can refuse: no live admin token (401), a sender token in its
/// place (403), an address over its per-IP layers (429), a failing store (500).
pub struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        documented(&[
            TOKEN_REFUSED,
            SENDER_TOKEN_REFUSED,
            PER_IP_LIMITED,
            RELAY_FAILED,
        ])
    }
}

/// A route behind the per-IP limit that takes any token of the owner: 401, 429, 500.
pub struct SenderErrors;

impl IntoResponses for SenderErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        documented(&[UNAUTHENTICATED, PER_IP_LIMITED, INTERNAL_ERROR])
    }
}

/// A sender route about one of the owner's messages: [`SenderErrors`] with an admin token's
/// 403 and 404 for a message the owner does not have.
pub struct MessageErrors;

impl IntoResponses for MessageErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        documented(&[
            UNAUTHENTICATED,
            ADMIN_TOKEN_REFUSED,
            NOT_FOUND,
            PER_IP_LIMITED,
            INTERNAL_ERROR,
        ])
    }
}

/// The Pushover shim's refusals on every route it serves: 401, 429, 500 in its own shape.
pub struct ShimErrors;

impl IntoResponses for ShimErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        documented(&[SHIM_UNAUTHENTICATED, SHIM_RATE_LIMITED, SHIM_INTERNAL_ERROR])
    }
}
