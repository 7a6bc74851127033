//! Wire types of the loops back to the sender (SPEC §1.15 clear, §1.16 acknowledgements),
//! shared by the relay that answers them and the CLI that asks (`reflecto clear`, `respond`,
//! `ask`).

use serde::{Deserialize, Serialize};

/// The answer to `DELETE /v1/messages/{id}` and `DELETE /v1/keys/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClearResponse {
    /// The message cleared
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    pub id: String,
    /// Deliveries that had not ended and now never will (`cancelled`)
    pub cancelled: u64,
    /// `clear` events queued for the devices that had received the message
    pub cleared: u64,
}

/// `POST /v1/messages/{id}/acknowledge`: `{}` or `{"response": …}`. Unknown keys are
/// ignored; `null` is the same as absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcknowledgeRequest {
    /// One of the message's responses (an action's `response`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9._:-]{1,32}$")]
    pub response: Option<String>,
}

/// The message's first acknowledgement: the answer to every acknowledgement of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcknowledgeResponse {
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    pub id: String,
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub acknowledged_at: String,
    /// The device whose acknowledgement came first
    #[schema(pattern = "^dev_[0-9a-f]{16}$")]
    pub device_id: String,
    /// The response it chose, or null (the notification itself was clicked)
    pub response: Option<String>,
}

/// `GET /v1/messages/{id}`'s `acknowledged`: the first acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acknowledged {
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub at: String,
    #[schema(pattern = "^dev_[0-9a-f]{16}$")]
    pub device_id: String,
    pub response: Option<String>,
}

/// The Web Push body of a clear (encrypted like any push): the service worker closes the
/// notifications of that message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearPush {
    pub clear: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_the_specs() {
        let ack = AcknowledgeResponse {
            id: "msg_1".into(),
            acknowledged_at: "2026-01-01T00:00:00.000Z".into(),
            device_id: "dev_1".into(),
            response: None,
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"id":"msg_1","acknowledged_at":"2026-01-01T00:00:00.000Z","device_id":"dev_1","response":null}"#
        );
        let empty: AcknowledgeRequest = serde_json::from_str(r#"{"other":1}"#).unwrap();
        assert_eq!(empty.response, None);
        let null: AcknowledgeRequest = serde_json::from_str(r#"{"response":null}"#).unwrap();
        assert_eq!(null.response, None);
        assert_eq!(
            serde_json::to_string(&ClearPush {
                clear: "msg_1".into()
            })
            .unwrap(),
            r#"{"clear":"msg_1"}"#
        );
    }
}
