//! Request bodies under the 64 KiB cap (413 `payload_too_large` before parsing): a send's
//! message body in any accepted encoding, and the JSON bodies of pairing and acks; a hook's
//! body (a tool's own JSON) under its 256 KiB cap.

use crate::api::clear_ack::AcknowledgeRequest;
use crate::api::stream::{AckRequest, PairRequest};
use crate::api::{ApiError, ErrorCode, MAX_HOOK_BODY_BYTES, MAX_RAW_BODY_BYTES};
use crate::server::error::Failure;
use crate::validate::body::{BodyKind, fields_from_pairs, parse_kind};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The whole body, or 413 `payload_too_large` as soon as it passes `max` bytes (64 KiB for
/// everything but hooks). A declared `Content-Length` over the cap is refused before reading,
/// and is the `size` reported: the bytes read before stopping would say nothing about what
/// the client sent.
pub async fn read_capped(body: Body) -> Result<Bytes, Failure> {
    read_capped_to(body, MAX_RAW_BODY_BYTES).await
}

async fn read_capped_to(body: Body, max: usize) -> Result<Bytes, Failure> {
    let declared = HttpBody::size_hint(&body).exact();
    if let Some(size) = declared.filter(|&n| n > max as u64) {
        return Err(too_large(size, max));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            Failure::new(ErrorCode::InvalidBody, "the request body could not be read")
        })?;
        if buf.len() + chunk.len() > max {
            let read = (buf.len() + chunk.len()) as u64;
            return Err(too_large(declared.unwrap_or(read).max(read), max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn too_large(size: u64, max: usize) -> Failure {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body exceeds {max} bytes"),
    )
    .with_details(serde_json::json!({ "size": size, "max": max }))
    .into()
}

/// A body read only when asked, its encoding `E` decided once from `Content-Type`: a repeated
/// `Idempotency-Key` is answered before the body is read, as SPEC §1.1 replays it.
pub struct Deferred<E> {
    encoding: E,
    body: Body,
}

/// What a body's `Content-Type` header (if it is text) decides before the body is read.
pub trait Encoding: Sized {
    fn of(content_type: Option<&str>) -> Self;
}

impl<S: Send + Sync, E: Encoding + Send> FromRequest<S> for Deferred<E> {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        Ok(Deferred {
            encoding: E::of(content_type),
            body: request.into_body(),
        })
    }
}

/// A hook's body (SPEC §1.18): a tool's own JSON up to 256 KiB, read after a replay check, as a
/// send's is. Whatever the `Content-Type` says, the body is JSON, except a urlencoded form,
/// whose `payload` field holds it (GitHub's default webhook encoding).
pub type HookBody = Deferred<HookEncoding>;

/// How a hook's body carries its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEncoding {
    Json,
    /// A urlencoded form with the JSON in `payload`.
    Form,
}

impl Encoding for HookEncoding {
    fn of(content_type: Option<&str>) -> Self {
        let form = content_type
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if form {
            HookEncoding::Form
        } else {
            HookEncoding::Json
        }
    }
}

impl HookBody {
    /// The body as JSON: 413 over the cap, 400 `invalid_body` when it is not JSON.
    pub async fn json(self) -> Result<Value, Failure> {
        let bytes = read_capped_to(self.body, MAX_HOOK_BODY_BYTES).await?;
        let not_json = || Failure::new(ErrorCode::InvalidBody, "a hook's body must be JSON");
        if self.encoding == HookEncoding::Form {
            let payload = form_urlencoded::parse(&bytes)
                .find(|(name, _)| name == "payload")
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::InvalidBody,
                        "a urlencoded hook body carries its JSON in the field 'payload'",
                    )
                })?;
            return serde_json::from_str(&payload.1).map_err(|_| not_json());
        }
        serde_json::from_slice(&bytes).map_err(|_| not_json())
    }
}

/// A send's body in any accepted encoding.
pub type MessageBody = Deferred<BodyKind>;

impl Encoding for BodyKind {
    fn of(content_type: Option<&str>) -> Self {
        BodyKind::of(content_type)
    }
}

impl MessageBody {
    /// Reads the body under the cap → raw fields; `known` decides when a form body is a raw
    /// message.
    pub async fn fields(self, known: &[&str]) -> Result<Map<String, Value>, Failure> {
        let bytes = read_capped(self.body).await?;
        match self.encoding {
            BodyKind::Multipart(boundary) => {
                let pairs = multipart_pairs(bytes, boundary).await?;
                Ok(fields_from_pairs(pairs, None, known)?)
            }
            kind => Ok(parse_kind(&kind, &bytes, known)?),
        }
    }
}

async fn multipart_pairs(bytes: Bytes, boundary: String) -> Result<Vec<(String, String)>, Failure> {
    let bad = |_| Failure::new(ErrorCode::InvalidBody, "malformed multipart body");
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let text = field.text().await.map_err(bad)?;
        pairs.push((name, text));
    }
    Ok(pairs)
}

/// A JSON body type and the shape a client is told to send when its body does not parse.
pub trait JsonShape: DeserializeOwned {
    /// What `expected …` names, e.g. `{"ids":[…]}`.
    const SHAPE: &'static str;
}

impl JsonShape for PairRequest {
    const SHAPE: &'static str = "a JSON object {\"code\",\"type\",\"label\",\"fcm_token\"?,\"public_key\"?,\"subscription\"?}";
}

impl JsonShape for AcknowledgeRequest {
    const SHAPE: &'static str =
        "a JSON object {} or {\"response\":\"<one of the message's responses>\"}";
}

impl JsonShape for AckRequest {
    const SHAPE: &'static str = "{\"ids\":[event ids, as the stream's id strings or as numbers]}";
}

/// A JSON object body under the cap. One wording for a body that does not parse: 400
/// `invalid_body` "expected <shape>", never the parser's own text, which echoes its internals
/// ("at line 1 column 9").
pub struct CappedJson<T>(pub T);

impl<S: Send + Sync, T: JsonShape> FromRequest<S> for CappedJson<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, _: &S) -> Result<Self, Failure> {
        let bytes = read_capped(request.into_body()).await?;
        let refused = || Failure::new(ErrorCode::InvalidBody, format!("expected {}", T::SHAPE));
        // serde's derived structs also read a JSON array as their fields in order, so `[]`
        // would pass for `{}`: every body here is documented as an object, and only an
        // object is read.
        if !is_json_object(&bytes) {
            return Err(refused());
        }
        serde_json::from_slice(&bytes)
            .map(CappedJson)
            .map_err(|_| refused())
    }
}

/// Whether the text's first token opens an object: JSON allows only these four bytes of
/// whitespace before it.
fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b" \t\n\r".contains(b)) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::extract::testing::request;

    #[tokio::test]
    async fn over_64_kib_is_413_with_the_declared_size() {
        let big = "x".repeat(MAX_RAW_BODY_BYTES + 1);
        let refused = CappedJson::<AckRequest>::from_request(request("/", &[], &big), &())
            .await
            .err()
            .unwrap();
        assert_eq!(refused.error.code, ErrorCode::PayloadTooLarge);
        let details = refused.error.details.unwrap();
        assert_eq!(details["size"], MAX_RAW_BODY_BYTES + 1);
        assert_eq!(details["max"], MAX_RAW_BODY_BYTES);
        let body = MessageBody::from_request(request("/", &[], &big), &())
            .await
            .unwrap();
        let refused = body.fields(&["message"]).await.unwrap_err();
        assert_eq!(refused.error.code, ErrorCode::PayloadTooLarge);
    }

    #[tokio::test]
    async fn a_hook_body_may_be_256_kib_and_a_form_carries_it_in_payload() {
        let json = |ct: &'static str, body: String| async move {
            HookBody::from_request(request("/", &[("content-type", ct)], &body), &())
                .await
                .unwrap()
                .json()
                .await
        };
        let big = format!("[\"{}\"]", "x".repeat(MAX_RAW_BODY_BYTES * 3));
        assert!(json("application/json", big).await.is_ok());
        let over = format!("[\"{}\"]", "x".repeat(MAX_HOOK_BODY_BYTES));
        let refused = json("application/json", over).await.unwrap_err();
        assert_eq!(refused.error.code, ErrorCode::PayloadTooLarge);
        assert_eq!(refused.error.details.unwrap()["max"], MAX_HOOK_BODY_BYTES);
        let form = json(
            "application/x-www-form-urlencoded",
            "payload=%7B%22zen%22%3A1%7D".into(),
        )
        .await
        .unwrap();
        assert_eq!(form["zen"], 1);
        for (ct, body) in [
            ("application/x-www-form-urlencoded", "zen=1"),
            ("application/json", "{"),
            ("text/plain", "hello"),
        ] {
            let refused = json(ct, body.into()).await.unwrap_err();
            assert_eq!(refused.error.code, ErrorCode::InvalidBody, "{body}");
        }
    }

    #[tokio::test]
    async fn unparsable_json_names_the_expected_shape_not_the_parser() {
        let refused =
            CappedJson::<AckRequest>::from_request(request("/", &[], "{\"ids\": 1 2}"), &())
                .await
                .err()
                .unwrap();
        assert_eq!(refused.error.code, ErrorCode::InvalidBody);
        assert_eq!(
            refused.error.message,
            "expected {\"ids\":[event ids, as the stream's id strings or as numbers]}"
        );
        let CappedJson(ack) =
            CappedJson::<AckRequest>::from_request(request("/", &[], "{\"ids\":[\"7\"]}"), &())
                .await
                .unwrap();
        assert_eq!(ack.ids.len(), 1);
    }

    #[tokio::test]
    async fn a_json_array_is_refused_where_an_object_is_documented() {
        for body in ["[]", " \n[[\"7\"]]", "null", "\"{}\""] {
            let refused = CappedJson::<AckRequest>::from_request(request("/", &[], body), &())
                .await
                .err()
                .unwrap();
            assert_eq!(refused.error.code, ErrorCode::InvalidBody, "{body}");
        }
        for body in ["[]", "[null]"] {
            let refused =
                CappedJson::<AcknowledgeRequest>::from_request(request("/", &[], body), &())
                    .await
                    .err()
                    .unwrap();
            assert_eq!(refused.error.code, ErrorCode::InvalidBody, "{body}");
        }
        let CappedJson(ack) =
            CappedJson::<AcknowledgeRequest>::from_request(request("/", &[], " \r\n\t{}"), &())
                .await
                .unwrap();
        assert!(ack.response.is_none());
    }

    #[tokio::test]
    async fn message_bodies_are_read_in_the_encoding_their_content_type_names() {
        let fields = |ct: &'static str, body: &'static str| async move {
            let headers = [("content-type", ct)];
            MessageBody::from_request(request("/", &headers, body), &())
                .await
                .unwrap()
                .fields(&["message", "title"])
                .await
        };
        let json = fields("application/json", r#"{"message":"m"}"#)
            .await
            .unwrap();
        assert_eq!(json["message"], "m");
        let form = fields("application/x-www-form-urlencoded", "title=t&message=m").await;
        assert_eq!(form.unwrap()["title"], "t");
        let text = fields("text/plain", "hello").await.unwrap();
        assert_eq!(text["message"], "hello");
        let multipart = fields(
            "multipart/form-data; boundary=B",
            "--B\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nm\r\n--B--\r\n",
        )
        .await;
        assert_eq!(multipart.unwrap()["message"], "m");
        let broken = fields("multipart/form-data; boundary=B", "no parts").await;
        assert_eq!(
            broken.unwrap_err().error.message,
            "malformed multipart body"
        );
        let xml = fields("application/xml", "<a/>").await.unwrap_err();
        assert_eq!(xml.error.code, ErrorCode::InvalidBody);
    }
}
