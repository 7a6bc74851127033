//! The canonical send request: what every body encoding normalizes to, what the envelope's
//! payload is, and what `reflecto send` builds from its flags.

use super::Priority;
use super::url_rule::HTTP_URL_PATTERN;
use serde::{Deserialize, Serialize};

/// A validated, normalized send request. Absent optional fields stay `None` and are omitted
/// when serialized, so the envelope payload carries only what the sender gave.
///
/// Byte limits: JSON Schema counts `maxLength` in characters, the relay counts UTF-8 bytes, so
/// each `maxLength` below is the byte limit and is exact for ASCII text only. The serialized
/// envelope (these fields plus the token's label) must also fit in 2048 bytes, or the answer
/// is 413 `payload_too_large`: a rule across fields that a schema cannot state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SendRequest {
    /// 1–1500 UTF-8 bytes
    #[schema(min_length = 1, max_length = 1500)]
    pub message: String,
    /// 1–100 UTF-8 bytes; `null` is the same as absent
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub title: Option<String>,
    /// Default `default`. The relay also accepts the names in any case (`HIGH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// More than 5 are cut to the first 5, and a tag over 32 bytes is cut at a UTF-8 boundary,
    /// each with a warning (a 200, not an error)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An http or https URL of at most 512 UTF-8 bytes; the pattern is the relay's rule
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::request::nullable_url_schema)]
    pub url: Option<String>,
    /// At most 32 UTF-8 bytes
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32)]
    pub url_title: Option<String>,
    /// Buttons: a link (`label`, `url`) or a response (`label`, `response`, SPEC §1.16). Only
    /// the first 3 are kept (and validated); the rest are dropped with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::request::actions_schema)]
    pub actions: Option<Vec<Action>>,
    /// Device selector: comma-separated `all`, `mobile`/`phone`, `desktop`, `web`, `dev_…` ids
    /// or labels; at most 256 characters (not bytes) with at least one non-blank entry.
    /// Default `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = r"^[,\t\n\f\r ]*[^,\t\n\f\r ][\s\S]*$")]
    pub device: Option<String>,
    /// Default `false`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<bool>,
    /// Seconds the delivery may wait, default 259200 (72 h). Any number is accepted: fractions
    /// are floored and the value is clamped to [0, 259200].
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub ttl: Option<u64>,
    /// Replaces the owner's earlier notifications with the same key (SPEC §1.15): 1–64 bytes
    /// of `A-Z a-z 0-9 . _ : -`
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub key: Option<String>,
    /// Urgent only (SPEC §1.17): deliver again every `retry` seconds (30–3600) until
    /// acknowledged, cleared or `expire` passes; given together with `expire`
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 30, maximum = 3600)]
    pub retry: Option<u64>,
    /// Urgent only, with `retry`: seconds after the send when repeats stop (60–10800, at most
    /// the ttl)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 10800)]
    pub expire: Option<u64>,
    /// An https URL (512 bytes at most, the same rule as `url`, and public addresses only)
    /// the relay POSTs a signed JSON event to when the message is first acknowledged or its
    /// `expire` runs out (SPEC §1.17); else 400 `invalid_url`. (No pattern here: a third copy
    /// of the URL pattern makes fuzzers' data generation too slow.)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub callback: Option<String>,
}

/// Every URL field: the relay's own rule ([`HTTP_URL_PATTERN`]) and byte cap, so the document
/// and the relay cannot disagree.
pub fn url_schema() -> utoipa::openapi::schema::Object {
    url_schema_of(utoipa::openapi::schema::Type::String.into())
}

/// [`url_schema`] where JSON `null` is the same as absent.
pub fn nullable_url_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    url_schema_of(SchemaType::from_iter([Type::String, Type::Null]))
}

fn url_schema_of(
    schema_type: utoipa::openapi::schema::SchemaType,
) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(
            "An http or https URL of at most 512 UTF-8 bytes: a host name, a dotted IPv4 \
             address or a [bracketed] IPv6 address, then an optional port, path, query and \
             fragment without spaces or control characters. The pattern is the relay's rule; \
             a non-ASCII or `xn--` host label must also be valid IDNA.",
        ))
        .max_length(Some(crate::api::MAX_URL_BYTES))
        .pattern(Some(HTTP_URL_PATTERN))
        .build()
}

/// The `actions` schema: the first 3 items are [`Action`]s; the relay drops any further items
/// unread, so they may be anything.
pub fn actions_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, ObjectBuilder, SchemaType, Type};
    let action = || <Action as utoipa::PartialSchema>::schema();
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .prefix_items([action(), action(), action()])
        .items(ArrayItems::RefOrSchema(Box::new(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .into(),
        )))
        .build()
}

impl SendRequest {
    pub fn priority(&self) -> Priority {
        self.priority.unwrap_or_default()
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.unwrap_or(super::MAX_TTL_SECONDS)
    }

    pub fn device_selector(&self) -> &str {
        self.device.as_deref().unwrap_or("all")
    }
}

/// A button on the notification (SPEC §1.16): a link that opens `url`, or a response that
/// acknowledges the message with `response`. Exactly one of the two is set; the validation
/// engine refuses both or neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// 1–32 UTF-8 bytes
    pub label: String,
    /// An http or https URL of at most 512 UTF-8 bytes (same rule as `url`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// 1–32 bytes of `A-Z a-z 0-9 . _ : -`: what an acknowledgement with this button says
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

impl Action {
    /// A button that opens `url`.
    pub fn link(label: impl Into<String>, url: impl Into<String>) -> Action {
        Action {
            label: label.into(),
            url: Some(url.into()),
            response: None,
        }
    }

    /// A button that acknowledges with `response`.
    pub fn reply(label: impl Into<String>, response: impl Into<String>) -> Action {
        Action {
            label: label.into(),
            url: None,
            response: Some(response.into()),
        }
    }
}

/// The pattern of a response (SPEC §1.16), as the relay checks it.
pub const RESPONSE_PATTERN: &str = "^[A-Za-z0-9._:-]{1,32}$";

/// One of two shapes. The field the other shape has must be absent or JSON `null` (which the
/// relay reads as absent): with both set, or neither, the object matches no branch, exactly
/// as the relay answers 400 `invalid_action`. (OpenAPI 3.1 has `not`, but utoipa 5 cannot
/// write it; a `null`-only property says the same here.)
impl utoipa::PartialSchema for Action {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let label = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::api::MAX_ACTION_LABEL_BYTES))
                .description(Some("1–32 UTF-8 bytes"))
        };
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let response = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::api::MAX_RESPONSE_BYTES))
                .pattern(Some(RESPONSE_PATTERN))
        };
        let link = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("link"))
            .description(Some("A button that opens `url`"))
            .property("label", label())
            .property("url", url_schema())
            .property("response", null())
            .required("label")
            .required("url");
        let reply = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("response"))
            .description(Some(
                "A button that acknowledges the message with `response` (SPEC §1.16)",
            ))
            .property("label", label())
            .property("response", response())
            .property("url", null())
            .required("label")
            .required("response");
        OneOfBuilder::new().item(link).item(reply).into()
    }
}

impl utoipa::ToSchema for Action {}
