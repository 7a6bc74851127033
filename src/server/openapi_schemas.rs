//! Schemas that exist only in the document: the form and text encodings of a send, the
//! Pushover shim's fields, the health bodies and the `Idempotency-Key` header. The handlers
//! read these encodings themselves (src/validate/body.rs); each rule here restates one there.

use crate::api::Priority;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};

/// `Idempotency-Key`, on every route that sends.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // a declaration for the document; the `IdempotencyKey` extractor reads the header
pub struct IdempotencyKey {
    /// 1–64 visible ASCII characters. A key repeated by the same token within 24 h after a 200
    /// returns that original response and enqueues nothing; a 4xx records nothing.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 64,
        pattern = "^[!-~]{1,64}$",
        nullable = false
    )]
    idempotency_key: Option<String>,
}

/// A `text/plain` (or untyped) send: the whole body is the message, 1–1500 UTF-8 bytes.
pub struct RawMessage;

impl utoipa::PartialSchema for RawMessage {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(1500))
            .description(Some("The whole body is the message: 1–1500 UTF-8 bytes"))
            .into()
    }
}

impl utoipa::ToSchema for RawMessage {}

/// A urlencoded or multipart send: the fields of `SendRequest` as form keys, all text.
/// With no known key at all, the whole percent-decoded body is the message (so
/// `curl -d "Backup done"` works). `tags` may repeat and/or be comma-separated. `actions` is
/// accepted as one key holding a JSON array of `{label, url}` or `{label, response}` objects (as in `SendRequest`; the
/// schema leaves it out because a JSON text cannot be described here).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SendForm {
    /// 1–1500 UTF-8 bytes
    #[schema(min_length = 1, max_length = 1500)]
    message: String,
    /// 1–100 UTF-8 bytes
    #[schema(min_length = 1, max_length = 100, nullable = false)]
    title: Option<String>,
    #[schema(nullable = false)]
    priority: Option<Priority>,
    /// Comma-separated; more than 5 kept as the first 5, each cut to 32 bytes, with warnings
    #[schema(nullable = false)]
    tags: Option<String>,
    /// An http or https URL of at most 512 UTF-8 bytes
    #[schema(schema_with = crate::api::url_schema)]
    url: Option<String>,
    /// At most 32 UTF-8 bytes
    #[schema(max_length = 32, nullable = false)]
    url_title: Option<String>,
    /// Device selector, at most 256 characters with one non-blank entry
    #[schema(
        max_length = 256,
        nullable = false,
        pattern = r"^[,\t\n\f\r ]*[^,\t\n\f\r ][\s\S]*$"
    )]
    device: Option<String>,
    /// true/false/1/0/yes/no, any case
    #[schema(
        nullable = false,
        pattern = r"^[\t\n\f\r ]*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo])[\t\n\f\r ]*$"
    )]
    markdown: Option<String>,
    /// Seconds as a decimal number; floored and clamped to [0, 259200]
    #[schema(
        nullable = false,
        pattern = r"^[\t\n\f\r ]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[\t\n\f\r ]*$"
    )]
    ttl: Option<String>,
    /// Replaces the owner's earlier notifications with this key: 1–64 of `A-Z a-z 0-9 . _ : -`
    #[schema(
        min_length = 1,
        max_length = 64,
        nullable = false,
        pattern = "^[A-Za-z0-9._:-]{1,64}$"
    )]
    key: Option<String>,
}

/// Pushover's fields as JSON. `token` may be given here or as `Authorization: Bearer`; `user`,
/// `sound`, `timestamp`, `html` and unknown fields are accepted and ignored. The other fields
/// follow `SendRequest`'s rules.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ShimRequest {
    /// The sender token (a non-string token is 401 `invalid_token`)
    #[schema(nullable = false, pattern = "^rfk_(live|test)_[A-Za-z0-9]{32}$")]
    token: Option<String>,
    /// 1–1500 UTF-8 bytes
    #[schema(min_length = 1, max_length = 1500)]
    message: String,
    /// 1–100 UTF-8 bytes
    #[schema(min_length = 1, max_length = 100)]
    title: Option<String>,
    /// -2 min, -1 low, 0 default, 1 high, as a number or a numeric string; 2 (emergency, SPEC
    /// §1.17) also needs `retry` and `expire`, else 400 `invalid_repeat`
    #[schema(schema_with = pushover_priority)]
    priority: Option<i64>,
    /// An http or https URL of at most 512 UTF-8 bytes
    #[schema(schema_with = crate::api::nullable_url_schema)]
    url: Option<String>,
    /// At most 32 UTF-8 bytes
    #[schema(max_length = 32)]
    url_title: Option<String>,
    /// Comma list of device names, at most 256 characters with one non-blank entry
    #[schema(max_length = 256, pattern = r"^[,\t\n\f\r ]*[^,\t\n\f\r ][\s\S]*$")]
    device: Option<String>,
    /// Seconds; floored and clamped to [0, 259200]
    ttl: Option<f64>,
}

/// Pushover's form fields (urlencoded or multipart): `ShimRequest`'s, all text. With no known
/// key at all, the whole percent-decoded body is the message.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ShimForm {
    /// The sender token
    #[schema(nullable = false, pattern = "^rfk_(live|test)_[A-Za-z0-9]{32}$")]
    token: Option<String>,
    /// 1–1500 UTF-8 bytes
    #[schema(min_length = 1, max_length = 1500)]
    message: String,
    /// 1–100 UTF-8 bytes
    #[schema(min_length = 1, max_length = 100, nullable = false)]
    title: Option<String>,
    /// -2, -1, 0 or 1; 2 (emergency, SPEC §1.17) also needs `retry` and `expire`, else 400
    /// `invalid_repeat`
    #[schema(schema_with = pushover_priority_text)]
    priority: Option<String>,
    /// An http or https URL of at most 512 UTF-8 bytes
    #[schema(schema_with = crate::api::url_schema)]
    url: Option<String>,
    /// At most 32 UTF-8 bytes
    #[schema(max_length = 32, nullable = false)]
    url_title: Option<String>,
    /// Comma list of device names, at most 256 characters
    #[schema(
        max_length = 256,
        nullable = false,
        pattern = r"^[,\t\n\f\r ]*[^,\t\n\f\r ][\s\S]*$"
    )]
    device: Option<String>,
    /// Seconds as a decimal number; floored and clamped to [0, 259200]
    #[schema(
        nullable = false,
        pattern = r"^[\t\n\f\r ]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[\t\n\f\r ]*$"
    )]
    ttl: Option<String>,
}

/// `POST /1/receipts/{receipt}/cancel.json`'s body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ReceiptCancel {
    /// The sending token or any token of the message's owner
    #[schema(nullable = false, pattern = "^rfk_(live|test)_[A-Za-z0-9]{32}$")]
    token: Option<String>,
}

/// Pushover priority: `-2`..`1` as a number or a numeric string, or `null` (absent).
/// A priority as text, in a JSON string or a form field.
fn pushover_priority_text() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[\t\n\f\r ]*(-2|-1|0|1)[\t\n\f\r ]*$"))
        .build()
}

fn pushover_priority() -> utoipa::openapi::schema::Schema {
    let levels = [-2, -1, 0, 1];
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some(levels)),
        )
        .item(pushover_priority_text())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// The `GET /health/ready` body.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// ready | unavailable
    #[schema(pattern = "^(ready|unavailable)$")]
    status: String,
    /// ok | failing
    #[schema(pattern = "^(ok|failing)$")]
    store: String,
    /// ok | disabled | failing
    #[schema(pattern = "^(ok|disabled|failing)$")]
    fcm: String,
}

/// The `GET /health` and `/health/live` body: `{"status":"ok"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Liveness {
    #[schema(pattern = "^ok$")]
    status: String,
}

/// A hook's query parameters (SPEC §1.18): each overrides what the mapping chose, under the
/// field's own rule.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a declaration for the document; `hooks::Overrides` reads the query
pub struct HookQuery {
    /// Device selector, as a send's `device`: at most 256 characters with one non-blank entry
    #[param(
        max_length = 256,
        nullable = false,
        pattern = r"^[,\t\n\f\r ]*[^,\t\n\f\r ][\s\S]*$"
    )]
    device: Option<String>,
    /// The priority instead of the one mapped from the body
    #[param(nullable = false)]
    priority: Option<Priority>,
    /// A comma list of tags instead of the mapped ones (the first 5, each cut to 32 bytes)
    #[param(nullable = false)]
    tags: Option<String>,
    /// Seconds as a decimal number; floored and clamped to [0, 259200]
    #[param(
        nullable = false,
        pattern = r"^[\t\n\f\r ]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[\t\n\f\r ]*$"
    )]
    ttl: Option<String>,
}

/// A hook's built-in sources; an operator's template is reached by its own name too.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum HookSourceName {
    Alertmanager,
    Grafana,
    Github,
}

/// A hook's JSON body: the tool's own (Alertmanager's webhook v4, Grafana's contact point,
/// a GitHub event) or whatever an operator's template reads.
pub struct HookJson;

impl utoipa::PartialSchema for HookJson {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "The tool's own JSON, up to 256 KiB. `alertmanager` and `grafana`: an object \
                 with `status` (`firing` or `resolved`) and `alerts` (an array of objects); \
                 `github`: the event's object; a template: any JSON it can render.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for HookJson {}

/// GitHub's urlencoded webhook body: the event's JSON in the field `payload`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HookForm {
    /// The event's JSON text
    payload: String,
}

/// A hook's 200: a send's answer, or with `id` null when the call sent nothing.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HookResponse {
    /// `msg_` + 32 lowercase hex, or null when nothing was sent (a GitHub `ping`, an ignored
    /// event)
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    id: Option<String>,
    /// Every device a delivery was enqueued for (not yet confirmed on screen)
    delivered_to: Vec<crate::api::DeliveredTo>,
    warnings: Vec<String>,
}
