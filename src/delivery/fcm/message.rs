//! The FCM HTTP v1 message for one delivery (SPEC §1.10): a data message whose values are all
//! strings, with android priority and the remaining ttl.

use crate::api::Envelope;
use crate::api::Priority;
use crate::api::sealed;
use crate::store::{ClaimedJob, JobKind, PayloadKind};
use serde_json::{Map, Value, json};

/// `data` keys in SPEC order; absent fields are omitted.
fn data(envelope: &Envelope, message_id: &str) -> Map<String, Value> {
    let p = &envelope.payload;
    let mut data = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            data.insert(k.to_owned(), Value::String(v));
        }
    };
    put("id", Some(message_id.to_owned()));
    put("message", Some(p.message.clone()));
    put("title", p.title.clone());
    put("priority", p.priority.map(|p| p.as_str().to_owned()));
    put(
        "tags",
        p.tags
            .as_ref()
            .map(|t| serde_json::to_string(t).unwrap_or_default()),
    );
    put("url", p.url.clone());
    put("url_title", p.url_title.clone());
    put(
        "actions",
        p.actions
            .as_ref()
            .map(|a| serde_json::to_string(a).unwrap_or_default()),
    );
    put("markdown", p.markdown.map(|m| m.to_string()));
    put("key", p.key.clone());
    put("source", Some(envelope.source.clone()));
    data
}

/// `NORMAL` for min/low, `HIGH` otherwise.
pub fn android_priority(priority: Priority) -> &'static str {
    match priority {
        Priority::Min | Priority::Low => "NORMAL",
        Priority::Default | Priority::High | Priority::Urgent => "HIGH",
    }
}

/// The request body for `messages:send`.
pub fn fcm_message(
    envelope: &Envelope,
    message_id: &str,
    registration_token: &str,
    remaining_ttl_secs: u64,
) -> Value {
    message(
        data(envelope, message_id),
        envelope.payload.priority(),
        registration_token,
        remaining_ttl_secs,
    )
}

/// The request body for a device with a public key (SPEC §1.12): `data` is only the id and the
/// sealed box (base64url); priority and ttl come from the job, not from the plaintext.
pub fn fcm_sealed_message(
    message_id: &str,
    sealed_b64: &str,
    priority: Priority,
    registration_token: &str,
    remaining_ttl_secs: u64,
) -> Value {
    let mut data = Map::new();
    data.insert("id".into(), Value::String(message_id.to_owned()));
    data.insert("sealed".into(), Value::String(sealed_b64.to_owned()));
    message(data, priority, registration_token, remaining_ttl_secs)
}

fn message(
    data: Map<String, Value>,
    priority: Priority,
    registration_token: &str,
    remaining_ttl_secs: u64,
) -> Value {
    json!({
        "message": {
            "token": registration_token,
            "data": data,
            "android": {
                "priority": android_priority(priority),
                "ttl": format!("{remaining_ttl_secs}s"),
            }
        }
    })
}

/// The request body of a clear (SPEC §1.15): `data` is `{"type":"clear","id"}` only.
pub fn fcm_clear_message(
    message_id: &str,
    priority: Priority,
    registration_token: &str,
    remaining_ttl_secs: u64,
) -> Value {
    let mut data = Map::new();
    data.insert("type".into(), Value::String("clear".into()));
    data.insert("id".into(), Value::String(message_id.to_owned()));
    message(data, priority, registration_token, remaining_ttl_secs)
}

/// The `messages:send` body: the sealed box when the job has one (SPEC §1.12), else the
/// envelope's fields. `None` when neither is usable. A send with a key collapses on the device
/// with the earlier ones of that key (`android.collapse_key`, SPEC §1.15), sealed or not. A
/// clear never collapses: it would replace a newer message of the key still waiting at FCM.
pub fn request_body(
    job: &ClaimedJob,
    registration: &str,
    remaining: u64,
) -> Option<serde_json::Value> {
    if job.kind == JobKind::Clear {
        return Some(fcm_clear_message(
            &job.message_id,
            job.priority.unwrap_or_default(),
            registration,
            remaining,
        ));
    }
    let mut body = content(job, registration, remaining)?;
    // A repeat (SPEC §1.17) is a new message collapsing with the message's key, or its id.
    let collapse = match job.kind {
        JobKind::Repeat => Some(job.key.as_ref().unwrap_or(&job.message_id)),
        _ => job.key.as_ref(),
    };
    if let Some(key) = collapse {
        body["message"]["android"]["collapse_key"] = Value::String(key.clone());
    }
    Some(body)
}

fn content(job: &ClaimedJob, registration: &str, remaining: u64) -> Option<serde_json::Value> {
    match (&job.payload, &job.envelope) {
        (Some(payload), _) => match payload.kind {
            PayloadKind::Sealed => Some(fcm_sealed_message(
                &job.message_id,
                &sealed::encode(&payload.bytes),
                job.priority.unwrap_or_default(),
                registration,
                remaining,
            )),
            // Web Push ciphertext cannot be read by FCM: nothing usable.
            PayloadKind::WebPush => None,
        },
        (None, Some(envelope)) => serde_json::from_str::<Envelope>(envelope)
            .ok()
            .map(|e| fcm_message(&e, &job.message_id, registration, remaining)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Action, SendRequest};

    #[test]
    fn full_payload_maps_to_string_data() {
        let envelope = Envelope::notification(
            SendRequest {
                message: "Backup done".into(),
                title: Some("nightly".into()),
                priority: Some(Priority::Low),
                tags: Some(vec!["ops".into(), "db".into()]),
                url: Some("https://e.com".into()),
                url_title: Some("open".into()),
                actions: Some(vec![Action::link("Logs", "https://e.com/l")]),
                device: Some("all".into()),
                markdown: Some(true),
                ttl: Some(60),
                key: None,
                retry: None,
                expire: None,
                callback: None,
            },
            "ci",
        );
        assert_eq!(
            fcm_message(&envelope, "msg_1", "reg-1", 42),
            json!({"message": {
                "token": "reg-1",
                "data": {
                    "id": "msg_1", "message": "Backup done", "title": "nightly", "priority": "low",
                    "tags": "[\"ops\",\"db\"]", "url": "https://e.com", "url_title": "open",
                    "actions": "[{\"label\":\"Logs\",\"url\":\"https://e.com/l\"}]", "markdown": "true", "source": "ci"
                },
                "android": {"priority": "NORMAL", "ttl": "42s"}
            }})
        );
    }

    #[test]
    fn sealed_message_carries_only_id_and_box() {
        assert_eq!(
            fcm_sealed_message("msg_3", "Ym94", Priority::Min, "reg-3", 7),
            json!({"message": {"token": "reg-3", "data": {"id": "msg_3", "sealed": "Ym94"},
                   "android": {"priority": "NORMAL", "ttl": "7s"}}})
        );
        assert_eq!(
            fcm_sealed_message("msg_4", "x", Priority::Urgent, "t", 0)["message"]["android"]["priority"],
            "HIGH"
        );
    }

    #[test]
    fn absent_fields_are_omitted_and_default_is_high() {
        let envelope = Envelope::notification(
            SendRequest {
                message: "m".into(),
                ..Default::default()
            },
            "s",
        );
        assert_eq!(
            fcm_message(&envelope, "msg_2", "t", 0),
            json!({"message": {"token": "t", "data": {"id": "msg_2", "message": "m", "source": "s"},
                   "android": {"priority": "HIGH", "ttl": "0s"}}})
        );
        for (p, expected) in [
            (Priority::Min, "NORMAL"),
            (Priority::Low, "NORMAL"),
            (Priority::Default, "HIGH"),
            (Priority::High, "HIGH"),
            (Priority::Urgent, "HIGH"),
        ] {
            assert_eq!(android_priority(p), expected);
        }
    }
}

#[cfg(test)]
mod request_body_tests {
    use super::*;
    use crate::store::{Channel, DeliveryTarget, JobPayload};

    /// A claimed FCM job for `reg`, as the worker hands it over.
    pub(super) fn job(
        envelope: Option<&str>,
        payload: Option<JobPayload>,
        priority: Option<Priority>,
    ) -> ClaimedJob {
        ClaimedJob {
            job_id: 1,
            lease_token: 1,
            message_id: "msg_1".into(),
            device_id: "dev_1".into(),
            channel: Channel::Fcm,
            target: Some(DeliveryTarget::Fcm("reg".into())),
            envelope: envelope.map(str::to_owned),
            payload,
            priority,
            attempts: 1,
            created_at: 0,
            expires_at: 60_000,
            key: None,
            kind: JobKind::Message,
        }
    }

    #[test]
    fn sealed_jobs_send_only_the_box_with_the_jobs_priority() {
        let sealed = JobPayload {
            kind: PayloadKind::Sealed,
            bytes: vec![1, 2, 3],
        };
        let body = request_body(
            &job(None, Some(sealed.clone()), Some(Priority::Low)),
            "reg",
            9,
        )
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": {"token": "reg", "data": {"id": "msg_1", "sealed": "AQID"},
                "android": {"priority": "NORMAL", "ttl": "9s"}}})
        );
        // A box wins even where the message still keeps its envelope for clear devices.
        let envelope = r#"{"type":"notification","payload":{"message":"hi"},"source":"ci"}"#;
        let mixed = request_body(&job(Some(envelope), Some(sealed), None), "reg", 9).unwrap();
        assert_eq!(mixed["message"]["data"]["sealed"], "AQID");
        assert!(mixed["message"]["data"].get("message").is_none());
        assert_eq!(mixed["message"]["android"]["priority"], "HIGH");
    }

    #[test]
    fn clear_jobs_map_the_envelope_and_nothing_usable_is_none() {
        let envelope = r#"{"type":"notification","payload":{"message":"hi"},"source":"ci"}"#;
        let clear = request_body(&job(Some(envelope), None, None), "reg", 5).unwrap();
        assert_eq!(clear["message"]["data"]["message"], "hi");
        assert!(clear["message"]["android"].get("collapse_key").is_none());
        assert!(request_body(&job(None, None, None), "reg", 5).is_none());
        assert!(request_body(&job(Some("{not json"), None, None), "reg", 5).is_none());
    }
}

#[cfg(test)]
mod collapse_tests {
    use super::*;
    use crate::store::JobPayload;

    /// SPEC §1.15: the key is FCM's collapse key for a sealed job and a clear one alike, and a
    /// clear job's data carries it as the envelope does.
    #[test]
    fn a_key_is_the_collapse_key() {
        let envelope =
            r#"{"type":"notification","payload":{"message":"hi","key":"ci:42"},"source":"ci"}"#;
        let job = |payload: Option<JobPayload>| ClaimedJob {
            key: Some("ci:42".into()),
            ..super::request_body_tests::job(Some(envelope), payload, None)
        };
        let clear = request_body(&job(None), "reg", 5).unwrap();
        assert_eq!(clear["message"]["android"]["collapse_key"], "ci:42");
        assert_eq!(clear["message"]["data"]["key"], "ci:42");
        let sealed = JobPayload {
            kind: PayloadKind::Sealed,
            bytes: vec![1],
        };
        let boxed = request_body(&job(Some(sealed)), "reg", 5).unwrap();
        assert_eq!(boxed["message"]["android"]["collapse_key"], "ci:42");
        assert!(boxed["message"]["data"].get("key").is_none());
        // A clear of the message (SPEC §1.15) names only the id, and never collapses: it must
        // not replace a newer message of the key still waiting at FCM.
        let removal = ClaimedJob {
            kind: JobKind::Clear,
            ..job(None)
        };
        let body = request_body(&removal, "reg", 5).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": {"token": "reg", "data": {"type": "clear", "id": "msg_1"},
                "android": {"priority": "HIGH", "ttl": "5s"}}})
        );
    }
}
