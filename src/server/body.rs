//! Reading request bodies: the 64 KiB cap (413 before parsing) and multipart collection.

use super::error::Failure;
use crate::api::{ApiError, ErrorCode, MAX_RAW_BODY_BYTES};
use crate::validate::body::{BodyKind, fields_from_pairs, parse_body};
use axum::body::{Body, Bytes, HttpBody};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// The whole body, or 413 `payload_too_large` as soon as it passes 64 KiB. A declared
/// `Content-Length` over the cap is refused before reading, and is the `size` reported: the
/// bytes read before stopping would say nothing about what the client sent.
pub async fn read_capped(body: Body) -> Result<Bytes, Failure> {
    let declared = HttpBody::size_hint(&body).exact();
    if let Some(size) = declared.filter(|&n| n > MAX_RAW_BODY_BYTES as u64) {
        return Err(too_large(size));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            Failure::new(ErrorCode::InvalidBody, "the request body could not be read")
        })?;
        if buf.len() + chunk.len() > MAX_RAW_BODY_BYTES {
            let read = (buf.len() + chunk.len()) as u64;
            return Err(too_large(declared.unwrap_or(read).max(read)));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn too_large(size: u64) -> Failure {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body exceeds {MAX_RAW_BODY_BYTES} bytes"),
    )
    .with_details(serde_json::json!({ "size": size, "max": MAX_RAW_BODY_BYTES }))
    .into()
}

/// Any accepted encoding → raw fields; `known` decides when a form body is a raw message.
pub async fn fields(
    content_type: Option<&str>,
    bytes: Bytes,
    known: &[&str],
) -> Result<Map<String, Value>, Failure> {
    match BodyKind::of(content_type) {
        BodyKind::Multipart(boundary) => {
            let pairs = multipart_pairs(bytes, boundary).await?;
            Ok(fields_from_pairs(pairs, None, known)?)
        }
        _ => Ok(parse_body(content_type, &bytes, known)?),
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
