//! The envelope's size rule (SPEC §1.1): the queued JSON ([`Envelope`], a wire type) held to
//! 2048 bytes.

use crate::api::{ApiError, Envelope, ErrorCode, MAX_ENVELOPE_BYTES, SendRequest};

/// The envelope's compact JSON, size-checked: 413 `payload_too_large` with its size.
pub fn build_envelope(payload: &SendRequest, source: &str) -> Result<String, ApiError> {
    let json = Envelope::notification_json(payload, source).map_err(|_| ApiError::internal())?;
    if json.len() > MAX_ENVELOPE_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("Payload exceeds {MAX_ENVELOPE_BYTES} byte limit"),
        )
        .with_details(serde_json::json!({ "size": json.len(), "max": MAX_ENVELOPE_BYTES })));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Priority;

    #[test]
    fn compact_and_absent_fields_omitted() {
        let req = SendRequest {
            message: "hi".into(),
            priority: Some(Priority::High),
            ..Default::default()
        };
        let json = build_envelope(&req, "ci").unwrap();
        assert_eq!(
            json,
            r#"{"type":"notification","payload":{"message":"hi","priority":"high"},"source":"ci"}"#
        );
    }

    #[test]
    fn over_2048_is_413_with_size() {
        let req = SendRequest {
            message: "x".repeat(1500),
            title: Some("t".repeat(100)),
            url: Some(format!("https://a.b/{}", "p".repeat(490))),
            ..Default::default()
        };
        let err = build_envelope(&req, "src").unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        assert_eq!(err.message, "Payload exceeds 2048 byte limit");
        let details = err.details.unwrap();
        assert_eq!(details["max"], 2048);
        assert!(details["size"].as_u64().unwrap() > 2048);
    }

    #[test]
    fn exactly_2048_passes_and_2049_fails() {
        let x = SendRequest {
            message: "x".into(),
            ..Default::default()
        };
        let base = build_envelope(&x, "").unwrap().len();
        // Grow the source until the envelope is exactly at the cap.
        let at_cap = "s".repeat(MAX_ENVELOPE_BYTES - base);
        let ok = build_envelope(&x, &at_cap).unwrap();
        assert_eq!(ok.len(), MAX_ENVELOPE_BYTES);
        let over = format!("{at_cap}s");
        let err = build_envelope(&x, &over).unwrap_err();
        assert_eq!(err.details.unwrap()["size"], MAX_ENVELOPE_BYTES + 1);
    }
}
