//! Hooks (SPEC §1.18): tools that speak their own JSON — Alertmanager, Grafana, GitHub, or a
//! body an operator's template describes — turned into a send request. Pure: each source is a
//! function from the tool's JSON to a [`Mapped`] request; [`finish`] then cuts what is over a
//! cap (a hook never fails on a length), applies the query's overrides and runs the one
//! validation engine, so the relay sends the result exactly like `/v1/send`.

pub mod alertmanager;
pub mod github;
pub mod grafana;
pub mod overrides;
pub mod template;

pub use overrides::Overrides;
pub use template::{HookTemplateConfig, Templates};

use crate::api::{
    ApiError, ErrorCode, MAX_ENVELOPE_BYTES, MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_TITLE_BYTES,
    MAX_URL_BYTES, SendRequest, Warning,
};
use crate::validate::{Validated, build_envelope, normalize, truncate_utf8};
use serde_json::Value;

/// The built-in sources, by the name in `/v1/hooks/{source}`.
pub const BUILT_IN: &[&str] = &["alertmanager", "grafana", "github"];

/// What a hook made of a tool's body.
#[derive(Debug, Clone, PartialEq)]
// One per hook call, moved once into `finish`: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Mapped {
    /// A notification to send; its fields may still be over their caps ([`finish`] cuts them).
    Send(SendRequest),
    /// Nothing to send (a GitHub `ping`, an ignored event), with the warnings that say why.
    Nothing(Vec<Warning>),
}

/// 400 `invalid_body` for a body that is not the tool's shape: `what` says what was expected.
pub fn not_the_shape(source: &str, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("the body is not {source}'s webhook JSON: {what}"),
    )
}

/// A string member of a JSON object, if present and a string.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A mapped request ready for the accept path: every text over its cap cut at a UTF-8
/// boundary with a warning, the query's `overrides` applied, the field rules of `/v1/send`
/// run, and the message cut further if the envelope (with the token's `label`) would pass
/// 2048 bytes. Errors are the engine's own 400s (a bad override, a template's bad value).
pub fn finish(
    request: SendRequest,
    overrides: &Overrides,
    label: &str,
) -> Result<Validated, ApiError> {
    let mut warnings = Vec::new();
    let request = cut_to_caps(request, &mut warnings);
    let mut fields = match serde_json::to_value(&request) {
        Ok(Value::Object(fields)) => fields,
        _ => return Err(ApiError::internal()),
    };
    overrides.apply(&mut fields);
    let Validated {
        request,
        warnings: engine,
    } = normalize(&fields)?;
    warnings.extend(engine);
    let mut validated = Validated { request, warnings };
    fit_envelope(&mut validated, label);
    Ok(validated)
}

/// Cuts title, message, url and key to their caps (a warning each). A cut URL that no longer
/// passes the URL rule, or a URL that never did, is dropped: a tool's link must not refuse
/// its alert.
fn cut_to_caps(mut request: SendRequest, warnings: &mut Vec<Warning>) -> SendRequest {
    let mut cut = |field: &'static str, text: String, max: usize| -> String {
        if text.len() <= max {
            return text;
        }
        warnings.push(Warning::FieldTruncated { field, max });
        truncate_utf8(&text, max).to_owned()
    };
    request.title = request
        .title
        .map(|t| cut("title", t, MAX_TITLE_BYTES))
        .filter(|t| !t.is_empty());
    request.message = cut("message", request.message, MAX_MESSAGE_BYTES);
    request.url = request
        .url
        .map(|u| cut("url", u, MAX_URL_BYTES))
        .filter(|u| crate::api::url_rule::accept_http_url(u).is_some());
    request.key = request.key.map(|k| cut("key", k, MAX_KEY_BYTES));
    request
}

/// Cuts the message until the envelope fits its 2048 bytes, replacing an earlier message
/// warning with the final cap. Each byte cut from the message removes at least one byte of
/// the envelope, so one cut of the excess is enough unless the other fields alone are too big
/// (then the accept path answers its 413).
fn fit_envelope(validated: &mut Validated, label: &str) {
    for _ in 0..4 {
        let Err(error) = build_envelope(&validated.request, label) else {
            return;
        };
        let size = error
            .details
            .as_ref()
            .and_then(|d| d["size"].as_u64())
            .unwrap_or(0) as usize;
        let message = &validated.request.message;
        let excess = size.saturating_sub(MAX_ENVELOPE_BYTES);
        if excess == 0 || excess >= message.len() {
            return;
        }
        let cut = truncate_utf8(message, message.len() - excess).to_owned();
        if cut.is_empty() {
            return;
        }
        let max = cut.len();
        validated.request.message = cut;
        validated.warnings.retain(|w| {
            !matches!(
                w,
                Warning::FieldTruncated {
                    field: "message",
                    ..
                }
            )
        });
        validated.warnings.push(Warning::FieldTruncated {
            field: "message",
            max,
        });
    }
}

/// One line of a notification from text that may hold several: lines joined with a space.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Priority;

    fn request(message: &str) -> SendRequest {
        SendRequest {
            message: message.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn text_over_a_cap_is_cut_with_a_warning_never_refused() {
        let long = SendRequest {
            title: Some("é".repeat(60)),
            url: Some(format!("https://example.com/{}", "p".repeat(600))),
            key: Some("k".repeat(70)),
            ..request(&"m".repeat(1600))
        };
        let done = finish(long, &Overrides::default(), "ci").unwrap();
        assert_eq!(done.request.title.as_deref().unwrap().len(), 100);
        assert_eq!(done.request.url.as_deref().unwrap().len(), 512);
        assert_eq!(done.request.key.as_deref().unwrap().len(), 64);
        let warnings: Vec<String> = done.warnings.iter().map(Warning::to_string).collect();
        assert!(warnings.contains(&"title truncated to 100 bytes".to_owned()));
        assert!(warnings.contains(&"url truncated to 512 bytes".to_owned()));
        assert!(warnings.contains(&"key truncated to 64 bytes".to_owned()));
        // The message was cut to 1500, then further so the envelope fits: one warning, the last.
        let message: Vec<&String> = warnings
            .iter()
            .filter(|w| w.starts_with("message"))
            .collect();
        assert_eq!(message.len(), 1, "{warnings:?}");
        assert_eq!(
            message[0],
            &format!("message truncated to {} bytes", done.request.message.len())
        );
        assert!(build_envelope(&done.request, "ci").is_ok());
    }

    #[test]
    fn a_link_that_is_not_an_http_url_is_dropped() {
        let odd = SendRequest {
            url: Some("ftp://example.com/x".into()),
            ..request("m")
        };
        assert_eq!(
            finish(odd, &Overrides::default(), "ci")
                .unwrap()
                .request
                .url,
            None
        );
    }

    #[test]
    fn overrides_win_and_are_checked_by_the_engine() {
        let mapped = SendRequest {
            priority: Some(Priority::Urgent),
            tags: Some(vec!["alertmanager".into()]),
            ..request("m")
        };
        let overrides =
            Overrides::parse(Some("priority=low&tags=a,+b&device=desktop&ttl=60.9")).unwrap();
        let done = finish(mapped.clone(), &overrides, "ci").unwrap().request;
        assert_eq!(done.priority, Some(Priority::Low));
        assert_eq!(done.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(done.device.as_deref(), Some("desktop"));
        assert_eq!(done.ttl, Some(60));
        let bad = Overrides::parse(Some("priority=loud")).unwrap();
        let refused = finish(mapped, &bad, "ci").unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidPriority);
    }
}
