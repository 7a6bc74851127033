//! What an FCM answer means for the job (SPEC §1.10). Pure: the worker feeds it status, body
//! and Retry-After.

use crate::delivery::outcome::Verdict;
use serde_json::Value;
use std::time::Duration;

/// What an FCM answer means: the job's [`Verdict`], or first a new OAuth token (which only
/// the FCM channel can act on, so the shared `Verdict` has no such case).
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    Job(Verdict),
    /// The OAuth token was refused: refresh it once, then retry.
    RefreshAuth,
}

impl From<Verdict> for Classified {
    fn from(verdict: Verdict) -> Classified {
        Classified::Job(verdict)
    }
}

impl PartialEq<Verdict> for Classified {
    fn eq(&self, verdict: &Verdict) -> bool {
        matches!(self, Classified::Job(v) if v == verdict)
    }
}

/// Google's floor for QUOTA_EXCEEDED back-off.
pub const QUOTA_MIN_DELAY: Duration = Duration::from_secs(60);

/// The `errorCode` of an `FcmError` detail, if the body carries one.
fn fcm_error_code(body: &Value) -> Option<&str> {
    body["error"]["details"].as_array()?.iter().find_map(|d| {
        let is_fcm = d["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"));
        if is_fcm {
            d["errorCode"].as_str()
        } else {
            None
        }
    })
}

/// Classifies an HTTP answer from `messages:send`.
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Classified {
    if status == 200 {
        return Verdict::Delivered.into();
    }
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let fcm_code = fcm_error_code(&parsed);
    let status_name = parsed["error"]["status"].as_str();
    let code = fcm_code
        .or(status_name)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP_{status}"));
    let verdict = match (status, fcm_code) {
        (_, Some("UNREGISTERED" | "SENDER_ID_MISMATCH")) => Verdict::Unreachable(code),
        // An FcmError on INVALID_ARGUMENT names the registration token; a payload problem
        // comes as google.rpc.BadRequest and retrying it cannot help.
        (400, Some("INVALID_ARGUMENT")) => Verdict::Unreachable(code),
        (_, Some("QUOTA_EXCEEDED")) | (429, _) => Verdict::Retry {
            error: code,
            min_delay: Some(retry_after.unwrap_or(QUOTA_MIN_DELAY).max(QUOTA_MIN_DELAY)),
        },
        (401 | 403, None) => return Classified::RefreshAuth,
        (s, _) if s >= 500 => Verdict::Retry {
            error: code,
            min_delay: retry_after,
        },
        _ => Verdict::DeadLetter(code),
    };
    verdict.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fcm_error(status: u16, name: &str, code: &str) -> String {
        serde_json::json!({"error": {"code": status, "status": name, "message": "x",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}})
        .to_string()
    }

    /// FCM's own errors, each with its `FcmError` code: (status, status name, code,
    /// `Retry-After`, what the worker does).
    #[test]
    fn every_fcm_error_rule() {
        let retry = |error: &str, min_delay| Verdict::Retry {
            error: error.into(),
            min_delay,
        };
        let seconds = |s| Some(Duration::from_secs(s));
        for (status, name, code, retry_after, verdict) in [
            (
                404,
                "NOT_FOUND",
                "UNREGISTERED",
                None,
                Verdict::Unreachable("UNREGISTERED".into()),
            ),
            (
                403,
                "PERMISSION_DENIED",
                "SENDER_ID_MISMATCH",
                None,
                Verdict::Unreachable("SENDER_ID_MISMATCH".into()),
            ),
            (
                400,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
                None,
                Verdict::Unreachable("INVALID_ARGUMENT".into()),
            ),
            (
                429,
                "RESOURCE_EXHAUSTED",
                "QUOTA_EXCEEDED",
                seconds(5),
                retry("QUOTA_EXCEEDED", Some(QUOTA_MIN_DELAY)),
            ),
            (
                503,
                "UNAVAILABLE",
                "UNAVAILABLE",
                seconds(7),
                retry("UNAVAILABLE", seconds(7)),
            ),
            (500, "INTERNAL", "INTERNAL", None, retry("INTERNAL", None)),
            (
                401,
                "UNAUTHENTICATED",
                "THIRD_PARTY_AUTH_ERROR",
                None,
                Verdict::DeadLetter("THIRD_PARTY_AUTH_ERROR".into()),
            ),
        ] {
            let body = fcm_error(status, name, code);
            assert_eq!(
                classify(status, &body, retry_after),
                verdict,
                "{status} {code}"
            );
        }
    }

    #[test]
    fn every_outcome_rule() {
        assert_eq!(
            classify(200, "{\"name\":\"projects/p/messages/1\"}", None),
            Verdict::Delivered
        );
        let bad_payload = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data"}]}]}}"#;
        assert_eq!(
            classify(400, bad_payload, None),
            Verdict::DeadLetter("INVALID_ARGUMENT".into())
        );
        assert_eq!(
            classify(429, "", Some(Duration::from_secs(120))),
            Verdict::Retry {
                error: "HTTP_429".into(),
                min_delay: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            classify(
                401,
                r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#,
                None
            ),
            Classified::RefreshAuth
        );
        assert_eq!(classify(403, "", None), Classified::RefreshAuth);
        assert_eq!(
            classify(418, "", None),
            Verdict::DeadLetter("HTTP_418".into())
        );
    }
}
