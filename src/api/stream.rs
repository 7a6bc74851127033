//! Wire types of pairing and the desktop stream (SPEC §1.9, §1.10, §1.12), shared by the relay
//! (`POST /v1/devices/pair`, `GET /v1/sync`, `POST /v1/sync/ack`) and the receivers
//! (`reflecto pair`, `reflecto listen`).

use super::DeviceType;
use serde::{Deserialize, Serialize};

/// `POST /v1/devices/pair`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairRequest {
    /// The 6-digit code from `reflecto admin pair`
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
    /// The device type (any case)
    #[serde(rename = "type")]
    #[schema(value_type = DeviceType)]
    pub device_type: String,
    /// 1–64 UTF-8 bytes, not blank; stored trimmed
    #[schema(max_length = 64, pattern = r"^[\t\n\f\r ]*[^\t\n\f\r ][\s\S]*$")]
    pub label: String,
    /// Required for android devices: the FCM registration token
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm_token: Option<String>,
    /// X25519 public key (32 bytes, base64url with or without padding): deliveries to this
    /// device are sealed to it and never stored in clear
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Required for webpush devices: the browser's `PushSubscription.toJSON()`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<super::webpush::SubscriptionJson>,
}

/// The answer to a pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairResponse {
    pub device_id: String,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    pub label: String,
    /// The `rfd_live_…` device credential, shown once (every type since SPEC §1.16): it
    /// acknowledges messages (`POST /v1/messages/{id}/acknowledge`), and an extension device
    /// reads `GET /v1/sync` with it. Older relays gave it to extension devices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The `data:` of one event on `GET /v1/sync`: for `event: notification` the envelope in clear,
/// or for a device with a public key the sealed box of `{"id","envelope"}` (base64url, no
/// padding); for `event: clear` (SPEC §1.15) the id alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncEventData {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// An event id as an ack may carry it: the SSE `id:` string, or the number it spells (JSON
/// Schema's `integer` also admits `1.0`, so an integral float is a number too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventId {
    Number(i64),
    Float(f64),
    Text(String),
}

/// Most digits a textual id may have: any 18-digit number fits an `i64`.
const MAX_ID_DIGITS: usize = 18;

impl EventId {
    /// The stream's sequence number, if this id is one: exactly the ids the schema documents.
    pub fn seq(&self) -> Option<i64> {
        match self {
            EventId::Number(n) => Some(*n),
            // `i64::MAX as f64` is 2^63 itself, one past the largest id: strictly below it.
            EventId::Float(f) if f.fract() == 0.0 && *f < i64::MAX as f64 => Some(*f as i64),
            EventId::Float(_) => None,
            EventId::Text(s) => Self::seq_of_text(s),
        }
        .filter(|n| *n >= 0)
    }

    /// An id as text (an ack's string id, or a `Last-Event-ID` header): ASCII space, an
    /// optional `+`, then 1–18 digits, as the schema's pattern says.
    pub fn seq_of_text(text: &str) -> Option<i64> {
        let digits = text.trim_ascii();
        let digits = digits.strip_prefix('+').unwrap_or(digits);
        let plain = (1..=MAX_ID_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit());
        plain.then(|| digits.parse().ok()).flatten()
    }
}

impl utoipa::PartialSchema for EventId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(i64::MAX)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[\t\n\f\r ]*\+?[0-9]{1,18}[\t\n\f\r ]*$")),
            )
            .description(Some(
                "an SSE `id:` as sent (a string) or the number it spells",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventId {}

/// `POST /v1/sync/ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AckRequest {
    /// Event ids received on the stream, as the SSE `id:` strings or as numbers
    pub ids: Vec<EventId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AckResponse {
    /// How many of them were newly marked delivered
    pub acked: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_from_strings_and_numbers() {
        let req: AckRequest =
            serde_json::from_str(r#"{"ids":["1",2," +3 ",4.0,5.5,-1.0,"-2","1e3"]}"#).unwrap();
        let seqs: Vec<_> = req.ids.iter().map(EventId::seq).collect();
        assert_eq!(
            seqs,
            [Some(1), Some(2), Some(3), Some(4), None, None, None, None]
        );
        let longest = EventId::Text("9".repeat(MAX_ID_DIGITS));
        assert_eq!(longest.seq(), Some(999_999_999_999_999_999));
        assert_eq!(EventId::Text("9".repeat(MAX_ID_DIGITS + 1)).seq(), None);
        assert_eq!(EventId::Number(i64::MAX).seq(), Some(i64::MAX));
        let past: AckRequest = serde_json::from_str(r#"{"ids":[9223372036854775808]}"#).unwrap();
        assert_eq!(past.ids[0].seq(), None);
        assert_eq!(EventId::Text("x".into()).seq(), None);
        assert_eq!(EventId::Number(-1).seq(), None);
    }

    #[test]
    fn sync_data_has_envelope_or_sealed() {
        let clear: SyncEventData =
            serde_json::from_str(r#"{"id":"msg_1","envelope":{"type":"notification"}}"#).unwrap();
        assert!(clear.sealed.is_none() && clear.envelope.is_some());
        let sealed = SyncEventData {
            id: "msg_1".into(),
            envelope: None,
            sealed: Some("abc".into()),
        };
        assert_eq!(
            serde_json::to_string(&sealed).unwrap(),
            r#"{"id":"msg_1","sealed":"abc"}"#
        );
    }
}
