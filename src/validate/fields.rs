//! The field table of SPEC §1.1: types, UTF-8 byte caps, truncation with warnings, ttl
//! flooring and clamping. Fields are checked in table order, so the first failing field
//! decides the error code.

use super::truncate_utf8;
use crate::api::{
    Action, ApiError, ErrorCode, MAX_ACTION_LABEL_BYTES, MAX_ACTIONS, MAX_DEVICE_CHARS,
    MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_RESPONSE_BYTES, MAX_TAG_BYTES, MAX_TAGS, MAX_TITLE_BYTES,
    MAX_TTL_SECONDS, MAX_URL_BYTES, MAX_URL_TITLE_BYTES, Priority, REPEAT_EXPIRE_SECONDS,
    REPEAT_RETRY_SECONDS, SendRequest, Warning,
};
use serde_json::{Map, Value};

/// The canonical field names: a form body without any of them is a raw message.
pub const KNOWN_KEYS: &[&str] = &[
    "message",
    "title",
    "priority",
    "tags",
    "url",
    "url_title",
    "actions",
    "device",
    "markdown",
    "ttl",
    "key",
    "retry",
    "expire",
    "callback",
];

/// A request that passed the field rules, with the warnings for what was changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub request: SendRequest,
    pub warnings: Vec<Warning>,
}

/// Applies every rule of the field table to raw fields. Unknown keys are ignored; JSON `null`
/// counts as absent for optional fields.
pub fn normalize(fields: &Map<String, Value>) -> Result<Validated, ApiError> {
    let mut warnings = Vec::new();
    let request = SendRequest {
        message: message(fields.get("message"))?,
        title: optional_text(
            get(fields, "title"),
            "title",
            ErrorCode::InvalidTitle,
            MAX_TITLE_BYTES,
            true,
        )?,
        priority: priority(get(fields, "priority"))?,
        tags: tags(get(fields, "tags"), &mut warnings)?,
        url: optional_string(get(fields, "url"), "url", ErrorCode::InvalidUrl)?
            .map(|u| http_url(u, "url", ErrorCode::InvalidUrl))
            .transpose()?,
        url_title: optional_text(
            get(fields, "url_title"),
            "url_title",
            ErrorCode::InvalidUrlTitle,
            MAX_URL_TITLE_BYTES,
            false,
        )?,
        actions: actions(get(fields, "actions"), &mut warnings)?,
        device: device(get(fields, "device"))?,
        markdown: markdown(get(fields, "markdown"))?,
        ttl: ttl(get(fields, "ttl"))?,
        key: key(get(fields, "key"))?,
        retry: None,
        expire: None,
        callback: optional_string(get(fields, "callback"), "callback", ErrorCode::InvalidUrl)?
            .map(|u| http_url(u, "callback", ErrorCode::InvalidUrl))
            .transpose()?,
    };
    let request = repeat(request, get(fields, "retry"), get(fields, "expire"))?;
    Ok(Validated { request, warnings })
}

/// Optional fields: `null` is the same as absent.
fn get<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    fields.get(key).filter(|v| !v.is_null())
}

/// How zod names a JSON value's type; the missing-message text is zod's and clients match it.
fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn message(value: Option<&Value>) -> Result<String, ApiError> {
    let Some(Value::String(text)) = value else {
        return Err(ApiError::new(
            ErrorCode::InvalidMessage,
            format!(
                "Invalid input: expected string, received {}",
                type_name(value)
            ),
        ));
    };
    sized(
        text,
        "message",
        MAX_MESSAGE_BYTES,
        ErrorCode::InvalidMessage,
        ErrorCode::MessageTooLong,
    )?;
    Ok(text.clone())
}

/// A text field's size rule: not empty (`empty`), at most `max` bytes (`too_long`, with the
/// sizes in `details`).
fn sized(
    text: &str,
    name: &str,
    max: usize,
    empty: ErrorCode,
    too_long: ErrorCode,
) -> Result<(), ApiError> {
    if text.is_empty() {
        return Err(ApiError::new(empty, format!("{name} must not be empty")));
    }
    at_most(text, name, max, too_long)
}

/// At most `max` bytes, else `code` with the sizes in `details`.
fn at_most(text: &str, name: &str, max: usize, code: ErrorCode) -> Result<(), ApiError> {
    if text.len() > max {
        return Err(ApiError::too_many_bytes(
            code,
            format!("{name} must be ≤ {max} bytes"),
            text.len(),
            max,
        ));
    }
    Ok(())
}

fn optional_string<'a>(
    value: Option<&'a Value>,
    name: &str,
    code: ErrorCode,
) -> Result<Option<&'a str>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::new(
            code,
            format!(
                "{name}: expected string, received {}",
                type_name(Some(other))
            ),
        )),
    }
}

/// An optional text field of at most `max` bytes whose every failure is `code`: the title
/// (which must not be empty) and `url_title`.
fn optional_text(
    value: Option<&Value>,
    name: &str,
    code: ErrorCode,
    max: usize,
    non_empty: bool,
) -> Result<Option<String>, ApiError> {
    let Some(text) = optional_string(value, name, code)? else {
        return Ok(None);
    };
    if non_empty {
        sized(text, name, max, code, code)?;
    } else {
        at_most(text, name, max, code)?;
    }
    Ok(Some(text.to_owned()))
}

fn priority(value: Option<&Value>) -> Result<Option<Priority>, ApiError> {
    let Some(name) = optional_string(value, "priority", ErrorCode::InvalidPriority)? else {
        return Ok(None);
    };
    name.parse::<Priority>().map(Some).map_err(|()| {
        ApiError::new(
            ErrorCode::InvalidPriority,
            format!("priority must be one of min, low, default, high, urgent (got '{name}')"),
        )
    })
}

/// An absent field, or its array; anything else is `invalid_body` saying `shape`.
fn optional_array<'a>(
    value: Option<&'a Value>,
    shape: &str,
) -> Result<Option<&'a Vec<Value>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidBody, shape)),
    }
}

fn tags(
    value: Option<&Value>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(items) = optional_array(value, "tags must be an array of strings")? else {
        return Ok(None);
    };
    let mut tags = Vec::with_capacity(items.len().min(MAX_TAGS));
    for item in items {
        let Value::String(tag) = item else {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "tags must be an array of strings",
            ));
        };
        tags.push(tag.as_str());
    }
    if tags.len() > MAX_TAGS {
        warnings.push(Warning::TagsTruncated { got: tags.len() });
        tags.truncate(MAX_TAGS);
    }
    let mut kept = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        if tag.len() > MAX_TAG_BYTES {
            warnings.push(Warning::TagTruncated { index: i + 1 });
        }
        kept.push(truncate_utf8(tag, MAX_TAG_BYTES).to_owned());
    }
    Ok(Some(kept))
}

/// An http(s) URL of at most 512 bytes; `what` names it in the message ("url", "action #2 url").
fn http_url(candidate: &str, what: &str, code: ErrorCode) -> Result<String, ApiError> {
    at_most(candidate, what, MAX_URL_BYTES, code)?;
    match crate::api::url_rule::accept_http_url(candidate) {
        Some(url) => Ok(url.to_owned()),
        None => Err(ApiError::new(
            code,
            format!(
                "{what} is not a valid URL (http or https, then a host name, an IPv4 address or a \
                 [bracketed] IPv6 address, no spaces or control characters)"
            ),
        )),
    }
}

fn actions(
    value: Option<&Value>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Vec<Action>>, ApiError> {
    let Some(items) = optional_array(
        value,
        "actions must be an array of {label, url} or {label, response} objects",
    )?
    else {
        return Ok(None);
    };
    if items.len() > MAX_ACTIONS {
        warnings.push(Warning::ActionsTruncated { got: items.len() });
    }
    items
        .iter()
        .take(MAX_ACTIONS)
        .enumerate()
        .map(|(i, item)| action(i + 1, item))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn action(index: usize, item: &Value) -> Result<Action, ApiError> {
    let invalid = |msg: String| ApiError::new(ErrorCode::InvalidAction, msg);
    let Value::Object(obj) = item else {
        return Err(invalid(format!(
            "action #{index} must be an object with a label and a url or a response"
        )));
    };
    let label = match obj.get("label") {
        Some(Value::String(label)) => label,
        _ => return Err(invalid(format!("action #{index} needs a string label"))),
    };
    sized(
        label,
        &format!("action #{index} label"),
        MAX_ACTION_LABEL_BYTES,
        ErrorCode::InvalidAction,
        ErrorCode::InvalidAction,
    )?;
    // SPEC §1.16: a link or a response, never both or neither; `null` is absent.
    let url = obj.get("url").filter(|v| !v.is_null());
    let response = obj.get("response").filter(|v| !v.is_null());
    match (url, response) {
        (Some(Value::String(url)), None) => Ok(Action::link(
            label.clone(),
            http_url(
                url,
                &format!("action #{index} url"),
                ErrorCode::InvalidAction,
            )?,
        )),
        (None, Some(Value::String(response))) if is_response(response) => {
            Ok(Action::reply(label.clone(), response.clone()))
        }
        // Too long is a length failure, with its size (SPEC §1.1's details).
        (None, Some(Value::String(response))) if response.len() > MAX_RESPONSE_BYTES => {
            Err(ApiError::too_many_bytes(
                ErrorCode::InvalidAction,
                format!("action #{index} response must be ≤ {MAX_RESPONSE_BYTES} bytes"),
                response.len(),
                MAX_RESPONSE_BYTES,
            ))
        }
        (None, Some(_)) => Err(invalid(format!(
            "action #{index} response must be 1–{MAX_RESPONSE_BYTES} bytes of A-Z a-z 0-9 . _ : -"
        ))),
        (Some(_), Some(_)) => Err(invalid(format!(
            "action #{index} has both a url and a response; give one"
        ))),
        (Some(_), None) => Err(invalid(format!("action #{index} needs a string url"))),
        (None, None) => Err(invalid(format!(
            "action #{index} needs a url (a link) or a response"
        ))),
    }
}

/// SPEC §1.16: a response is 1–32 bytes of `[A-Za-z0-9._:-]` (the pattern `/openapi.json`
/// shows as [`crate::api::RESPONSE_PATTERN`]). Shared by actions and acknowledgements.
pub fn is_response(text: &str) -> bool {
    (1..=MAX_RESPONSE_BYTES).contains(&text.len()) && text.bytes().all(is_key_byte)
}

/// SPEC §1.15: a key is 1–64 bytes of `[A-Za-z0-9._:-]` (also what `DELETE /v1/keys/{key}` and
/// `reflecto clear --key` accept).
pub fn is_key(text: &str) -> bool {
    (1..=MAX_KEY_BYTES).contains(&text.len()) && text.bytes().all(is_key_byte)
}

/// Whether `text` has the shape of a message id the relay issues (`msg_` + 32 lowercase hex):
/// anything else names no message, and is answered 404 without asking the store (a NUL byte
/// in a path is not even text PostgreSQL takes).
pub fn is_message_id(text: &str) -> bool {
    text.strip_prefix("msg_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The characters of a `key` and of a response.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// The responses a message's actions offer, in order (what an acknowledgement may say).
pub fn responses_of(actions: Option<&[Action]>) -> Vec<String> {
    actions
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.response.clone())
        .collect()
}

fn device(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let Some(selector) = optional_string(value, "device", ErrorCode::InvalidDevice)? else {
        return Ok(None);
    };
    if selector
        .split(',')
        .all(|entry| entry.trim_ascii().is_empty())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidDevice,
            "device must name at least one device",
        ));
    }
    let chars = selector.chars().count();
    if chars > MAX_DEVICE_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidDevice,
            format!("device must be ≤ {MAX_DEVICE_CHARS} characters (got {chars})"),
        )
        .with_details(serde_json::json!({ "chars": chars, "max": MAX_DEVICE_CHARS })));
    }
    Ok(Some(selector.to_owned()))
}

fn markdown(value: Option<&Value>) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            "markdown must be a boolean",
        )),
    }
}

/// Fractions floored, then clamped to [0, 72 h].
fn ttl(value: Option<&Value>) -> Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let seconds = n
                .as_f64()
                .filter(|s| s.is_finite())
                .unwrap_or(f64::MAX)
                .floor();
            Ok(Some(seconds.clamp(0.0, MAX_TTL_SECONDS as f64) as u64))
        }
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            "ttl must be a number of seconds",
        )),
    }
}

/// SPEC §1.15: 1–64 bytes of `[A-Za-z0-9._:-]` (the pattern `/openapi.json` shows); a value
/// of another type is a malformed body, as for every field.
fn key(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let key = match value {
        None => return Ok(None),
        Some(Value::String(key)) => key,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "key must be a string",
            ));
        }
    };
    if !is_key(key) {
        return Err(ApiError::new(
            ErrorCode::InvalidKey,
            format!("key must be 1–{MAX_KEY_BYTES} bytes of A-Z a-z 0-9 . _ : -"),
        ));
    }
    Ok(Some(key.clone()))
}

/// SPEC §1.17: `retry` and `expire` are whole seconds, given together, only on an urgent
/// message, within their ranges, and `expire` within the ttl; anything else is
/// `invalid_repeat` (a value that is not a number at all is a malformed body).
fn repeat(
    request: SendRequest,
    retry: Option<&Value>,
    expire: Option<&Value>,
) -> Result<SendRequest, ApiError> {
    let seconds = |value: Option<&Value>, name: &str| -> Result<Option<u64>, ApiError> {
        match value {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRepeat,
                    format!("{name} must be a whole number of seconds"),
                )
            }),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("{name} must be a number of seconds"),
            )),
        }
    };
    let (retry, expire) = (seconds(retry, "retry")?, seconds(expire, "expire")?);
    let invalid = |text: String| Err(ApiError::new(ErrorCode::InvalidRepeat, text));
    let (retry, expire) = match (retry, expire) {
        (None, None) => return Ok(request),
        (Some(retry), Some(expire)) => (retry, expire),
        _ => return invalid("retry and expire must be given together".into()),
    };
    if request.priority() != Priority::Urgent {
        return invalid("retry and expire need priority urgent".into());
    }
    if !REPEAT_RETRY_SECONDS.contains(&retry) {
        return invalid(format!(
            "retry must be {}–{} seconds",
            REPEAT_RETRY_SECONDS.start(),
            REPEAT_RETRY_SECONDS.end()
        ));
    }
    if !REPEAT_EXPIRE_SECONDS.contains(&expire) {
        return invalid(format!(
            "expire must be {}–{} seconds",
            REPEAT_EXPIRE_SECONDS.start(),
            REPEAT_EXPIRE_SECONDS.end()
        ));
    }
    if expire > request.ttl_seconds() {
        return invalid(format!(
            "expire ({expire} s) must not be longer than the ttl ({} s)",
            request.ttl_seconds()
        ));
    }
    Ok(SendRequest {
        retry: Some(retry),
        expire: Some(expire),
        ..request
    })
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
