//! Body encodings → one JSON object of raw fields. JSON is taken as sent; form and multipart
//! fields are typed here (tags split, actions parsed, markdown and ttl read) so that the field
//! rules in [`super::fields`] see one shape whatever the encoding.

use crate::api::{ApiError, ErrorCode};
use serde_json::{Map, Value};

/// The encodings SPEC §1.1 accepts, decided by Content-Type alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// Carries the boundary; parsed by the server (it needs a streaming parser).
    Multipart(String),
    Text,
    Unsupported(String),
}

impl BodyKind {
    pub fn of(content_type: Option<&str>) -> BodyKind {
        let Some(ct) = content_type.map(str::trim).filter(|ct| !ct.is_empty()) else {
            return BodyKind::Text;
        };
        let mut parts = ct.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "application/json" => BodyKind::Json,
            "application/x-www-form-urlencoded" => BodyKind::Form,
            "text/plain" => BodyKind::Text,
            "multipart/form-data" => parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| BodyKind::Multipart(v.trim().trim_matches('"').to_owned()))
                .unwrap_or_else(|| BodyKind::Unsupported(ct.to_owned())),
            _ => BodyKind::Unsupported(ct.to_owned()),
        }
    }
}

fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message)
}

/// Parses JSON, urlencoded and text bodies. Multipart is refused here: the server collects its
/// parts and calls [`fields_from_pairs`].
pub fn parse_body(
    content_type: Option<&str>,
    body: &[u8],
    known: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    parse_kind(&BodyKind::of(content_type), body, known)
}

/// [`parse_body`] for a body whose encoding was already decided.
pub fn parse_kind(
    kind: &BodyKind,
    body: &[u8],
    known: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    match kind {
        BodyKind::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(invalid_body("body must be a JSON object")),
            // The parser's own text ("expected i64 at line 1 column 568") describes its internals,
            // not the contract: say what kind of failure it was and nothing more.
            Err(e) if e.is_eof() => Err(invalid_body("body is not valid JSON: it ends too early")),
            Err(_) => Err(invalid_body("body is not valid JSON")),
        },
        BodyKind::Form => {
            let pairs = form_urlencoded::parse(body).into_owned().collect();
            fields_from_pairs(pairs, Some(body), known)
        }
        BodyKind::Text => {
            let text =
                std::str::from_utf8(body).map_err(|_| invalid_body("body is not valid UTF-8"))?;
            let mut map = Map::new();
            map.insert("message".into(), Value::String(text.to_owned()));
            Ok(map)
        }
        BodyKind::Multipart(_) => Err(invalid_body("multipart bodies are parsed by the server")),
        BodyKind::Unsupported(ct) => Err(invalid_body(format!(
            "unsupported Content-Type '{ct}': use application/json, application/x-www-form-urlencoded, multipart/form-data or text/plain"
        ))),
    }
}

/// Form fields (urlencoded or multipart) → typed JSON fields. When no known key is present and
/// the raw body is at hand, the whole percent-decoded body is the message, so that
/// `curl -d "Backup done"` works.
pub fn fields_from_pairs(
    pairs: Vec<(String, String)>,
    raw: Option<&[u8]>,
    known: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    if let Some(raw) = raw
        && !pairs.iter().any(|(k, _)| known.contains(&k.as_str()))
    {
        let decoded = percent_encoding::percent_decode(raw)
            .decode_utf8()
            .map_err(|_| invalid_body("body is not valid UTF-8"))?;
        let mut map = Map::new();
        map.insert("message".into(), Value::String(decoded.into_owned()));
        return Ok(map);
    }

    let mut map = Map::new();
    let mut tags: Option<Vec<Value>> = None;
    for (key, value) in pairs {
        match key.as_str() {
            "tags" => tags.get_or_insert_with(Vec::new).extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_owned())),
            ),
            _ if map.contains_key(&key) => {} // first occurrence wins
            "actions" => {
                let parsed = serde_json::from_str::<Value>(&value).map_err(|_| {
                    invalid_body(
                        "actions must be a JSON array of {label, url} or {label, response} objects",
                    )
                })?;
                map.insert(key, parsed);
            }
            "markdown" => {
                let flag = match value.trim_ascii().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => {
                        return Err(invalid_body(
                            "markdown must be one of true/false/1/0/yes/no",
                        ));
                    }
                };
                map.insert(key, Value::Bool(flag));
            }
            "ttl" => {
                map.insert(key, Value::Number(form_seconds(&value)?));
            }
            // Whole seconds (SPEC §1.17); anything else is left as text for the field rule.
            "retry" | "expire" => {
                let number = value.trim_ascii().parse::<u64>().ok();
                map.insert(key, number.map_or(Value::String(value), Value::from));
            }
            _ => {
                map.insert(key, Value::String(value));
            }
        }
    }
    if let Some(tags) = tags {
        map.insert("tags".into(), Value::Array(tags));
    }
    Ok(map)
}

/// A form's `ttl`: a decimal number, exponent of any length, nothing else (no `inf`/`nan`,
/// which `f64`'s parser would take). One too large for `f64` is the largest, which the
/// clamp then brings to 72 h, as the document's pattern promises.
fn form_seconds(value: &str) -> Result<serde_json::Number, ApiError> {
    let text = value.trim_ascii();
    let seconds = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .ok_or_else(|| invalid_body("ttl must be a number of seconds"))?;
    let finite = if seconds.is_finite() {
        seconds
    } else {
        f64::MAX.copysign(seconds)
    };
    Ok(serde_json::Number::from_f64(finite).expect("a finite number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fields::KNOWN_KEYS;
    use serde_json::json;

    fn parse(ct: Option<&str>, body: &str) -> Result<Map<String, Value>, ApiError> {
        parse_body(ct, body.as_bytes(), KNOWN_KEYS)
    }

    #[test]
    fn content_type_dispatch() {
        assert_eq!(BodyKind::of(None), BodyKind::Text);
        assert_eq!(
            BodyKind::of(Some("application/json; charset=utf-8")),
            BodyKind::Json
        );
        assert_eq!(BodyKind::of(Some("Application/JSON")), BodyKind::Json);
        assert_eq!(
            BodyKind::of(Some("text/plain;charset=utf-8")),
            BodyKind::Text
        );
        assert_eq!(
            BodyKind::of(Some("multipart/form-data; boundary=\"abc\"")),
            BodyKind::Multipart("abc".into())
        );
        assert!(matches!(
            BodyKind::of(Some("multipart/form-data")),
            BodyKind::Unsupported(_)
        ));
        assert!(matches!(
            BodyKind::of(Some("application/xml")),
            BodyKind::Unsupported(_)
        ));
    }

    #[test]
    fn unsupported_type_and_bad_json_are_invalid_body() {
        assert_eq!(
            parse(Some("application/xml"), "<a/>").unwrap_err().code,
            ErrorCode::InvalidBody
        );
        assert_eq!(
            parse(Some("application/json"), "{").unwrap_err().code,
            ErrorCode::InvalidBody
        );
        assert_eq!(
            parse(Some("application/json"), "[1]").unwrap_err().code,
            ErrorCode::InvalidBody
        );
    }

    #[test]
    fn text_and_missing_type_are_the_message() {
        assert_eq!(
            parse(None, "hi there").unwrap()["message"],
            json!("hi there")
        );
        assert_eq!(
            parse(Some("text/plain"), "a=b").unwrap()["message"],
            json!("a=b")
        );
        let bad = parse_body(None, &[0xff, 0xfe], KNOWN_KEYS).unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidBody);
    }

    #[test]
    fn form_with_no_known_key_is_the_raw_message() {
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(
            parse(form, "Backup done").unwrap()["message"],
            json!("Backup done")
        );
        assert_eq!(
            parse(form, "Backup%20done+ok").unwrap()["message"],
            json!("Backup done+ok")
        );
        assert_eq!(parse(form, "a=b&c=d").unwrap()["message"], json!("a=b&c=d"));
    }

    #[test]
    fn form_fields_are_typed() {
        let form = Some("application/x-www-form-urlencoded");
        let map = parse(
            form,
            "message=hi&tags=a,b&tags=c&markdown=yes&ttl=1.9&actions=%5B%7B%22label%22%3A%22x%22%2C%22url%22%3A%22https%3A%2F%2Fa.b%22%7D%5D",
        )
        .unwrap();
        assert_eq!(map["message"], json!("hi"));
        assert_eq!(map["tags"], json!(["a", "b", "c"]));
        assert_eq!(map["markdown"], json!(true));
        assert_eq!(map["ttl"], json!(1.9));
        assert_eq!(map["actions"], json!([{"label":"x","url":"https://a.b"}]));
    }

    /// The document's ttl pattern takes an exponent of any length; the relay refused
    /// `1e999` (not finite) and `\x1c`-padded numbers, so a fuzzer's valid value got a 400.
    #[test]
    fn form_ttl_takes_any_exponent_and_only_ascii_space() {
        let form = Some("application/x-www-form-urlencoded");
        for (text, seconds) in [
            ("1e999", f64::MAX),
            ("-1e999", -f64::MAX),
            ("1e-999", 0.0),
            ("%09%0C+7.5%0D%0A", 7.5),
        ] {
            let map = parse(form, &format!("message=x&ttl={text}")).unwrap();
            assert_eq!(map["ttl"].as_f64(), Some(seconds), "{text}");
        }
    }

    #[test]
    fn form_type_errors() {
        let form = Some("application/x-www-form-urlencoded");
        for body in [
            "message=x&markdown=maybe",
            "message=x&ttl=soon",
            "message=x&ttl=NaN",
            "message=x&ttl=inf",
            "message=x&ttl=%1C5",
            "message=x&ttl=%0B5",
            "message=x&actions=nope",
        ] {
            assert_eq!(
                parse(form, body).unwrap_err().code,
                ErrorCode::InvalidBody,
                "{body}"
            );
        }
        for (word, flag) in [
            ("true", true),
            ("1", true),
            ("no", false),
            ("0", false),
            ("FALSE", false),
        ] {
            assert_eq!(
                parse(form, &format!("message=x&markdown={word}")).unwrap()["markdown"],
                json!(flag)
            );
        }
    }
}
