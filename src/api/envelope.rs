//! The envelope that is queued and delivered (SPEC §1.1): the validated payload plus its
//! source. Devices and `listen` read it back; the relay writes it compactly, held to 2048 bytes
//! by `validate::build_envelope`.

use super::SendRequest;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: SendRequest,
    pub source: String,
}

/// [`Envelope`]'s serialization from borrowed parts: what the relay queues is only its JSON.
#[derive(Serialize)]
struct EnvelopeJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    payload: &'a SendRequest,
    source: &'a str,
}

impl Envelope {
    pub fn notification(payload: SendRequest, source: impl Into<String>) -> Envelope {
        Envelope {
            kind: "notification".to_owned(),
            payload,
            source: source.into(),
        }
    }

    /// The compact JSON of [`Envelope::notification`]`(payload, source)`, without building it.
    pub fn notification_json(payload: &SendRequest, source: &str) -> serde_json::Result<String> {
        serde_json::to_string(&EnvelopeJson {
            kind: "notification",
            payload,
            source,
        })
    }
}
