//! Signed callbacks (SPEC §1.17): when an urgent message is first acknowledged or its `expire`
//! runs out, the relay POSTs `{"type","id","acknowledged_at","device_id","response"}` to the
//! send's `callback`, signed as Standard Webhooks do with the SHA-256 of the sending token.
//!
//! The work is durable: the store makes a callback due in the commit that acknowledges (or in
//! the maintenance round that sees the expiry), and each maintenance round claims the due ones
//! under a lease (one relay sends each), sends them and records the outcome; a failure is
//! retried with back-off until 24 h after it fell due. The HTTP client is the Web Push one:
//! the same public-only resolver at connect time and no redirects, unless
//! `--callback-allow-local`.

use crate::delivery::webpush::client::{Answer, WebPushClient};
use crate::delivery::webpush::message::PushRequest;
use crate::delivery::webpush::subscription::{check_endpoint, check_scheme};
use crate::store::{CallbackJob, CallbackOutcome, Store};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// One attempt's deadline.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Callbacks sent per maintenance round (the rest wait for the next, 5 s later).
const PER_ROUND: usize = 50;
/// A claimed callback is another relay's to retry once this passes unanswered.
const LEASE_MS: i64 = 60_000;

/// The send-time rule (SPEC §1.17): `https` and public addresses only, unless `allow_local`,
/// which also allows `http`. `Err` carries the reason for 400 `invalid_url`.
pub async fn check_url(callback: &str, allow_local: bool) -> Result<(), String> {
    let url = url::Url::parse(callback).map_err(|e| format!("callback: {e}"))?;
    check_scheme(&url, allow_local).map_err(|e| format!("callback: {e}"))?;
    if !allow_local {
        check_endpoint(&url)
            .await
            .map_err(|e| format!("callback: {e}"))?;
    }
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The callback's JSON body (compact; the signature covers these exact bytes).
pub fn body(job: &CallbackJob) -> String {
    let ack = job.acknowledged.as_ref();
    serde_json::json!({
        "type": job.kind,
        "id": job.message_id,
        "acknowledged_at": ack.map(|a| rfc3339(a.at)),
        "device_id": ack.map(|a| a.device_id.clone()),
        "response": ack.and_then(|a| a.response.clone()),
    })
    .to_string()
}

/// Standard Webhooks headers: `webhook-id` (`<id>.<type>`, the same on every retry),
/// `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
/// "<webhook-id>.<timestamp>.<body>">`).
pub fn signed_headers(job: &CallbackJob, body: &str, now_ms: i64) -> Vec<(&'static str, String)> {
    let id = format!("{}.{}", job.message_id, job.kind);
    let timestamp = now_ms.div_euclid(1000).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(&job.key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

/// What one attempt's answer means: any 2xx ends it; anything else is retried with back-off
/// until the window closes.
pub fn outcome(answer: Answer, job: &CallbackJob, now: i64) -> CallbackOutcome {
    match answer {
        Answer::Status { status, .. } if (200..300).contains(&status) => CallbackOutcome::Delivered,
        _ if now >= job.give_up_at => CallbackOutcome::Failed,
        Answer::Status { retry_after, .. } => {
            let backoff = crate::backoff::jittered(
                Duration::from_secs(5),
                Duration::from_secs(3600),
                job.attempts.clamp(1, 30) as u32 - 1,
            );
            // The receiver's Retry-After is honoured up to an hour (the back-off's cap): a
            // huge one must neither overflow nor park the callback past its 24 h.
            let wait = retry_after
                .map_or(backoff, |r| r.max(backoff))
                .min(Duration::from_secs(3600));
            CallbackOutcome::RetryAt(now.saturating_add(wait.as_millis() as i64))
        }
        Answer::Timeout | Answer::Connection | Answer::NotPublic => CallbackOutcome::RetryAt(
            now + crate::backoff::jittered(
                Duration::from_secs(5),
                Duration::from_secs(3600),
                job.attempts.clamp(1, 30) as u32 - 1,
            )
            .as_millis() as i64,
        ),
    }
}

/// One round: claims the due callbacks, sends them concurrently, records each outcome.
/// Returns how many were attempted.
pub async fn send_due(store: &Store, allow_local: bool, now: i64) -> crate::store::Result<usize> {
    let jobs = store.claim_callbacks(now, PER_ROUND, LEASE_MS).await?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let client = match WebPushClient::new(CALLBACK_TIMEOUT, allow_local) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client for callbacks");
            return Ok(0);
        }
    };
    let attempts = jobs.iter().map(|job| {
        let client = client.clone();
        async move {
            let answer = match url::Url::parse(&job.url) {
                Ok(url) => {
                    let body = body(job);
                    // The receiver checks the timestamp against its own clock: wall time,
                    // not the relay's scheduling clock (a test moves that one).
                    let headers = signed_headers(job, &body, crate::store::now_ms());
                    client
                        .send(&PushRequest {
                            url,
                            headers,
                            body: body.into_bytes(),
                        })
                        .await
                }
                Err(_) => Answer::Connection,
            };
            tracing::info!(message_id = %job.message_id, kind = %job.kind, attempt = job.attempts, answer = ?answer, "callback");
            (job, outcome(answer, job, now))
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    for (job, outcome) in &results {
        store
            .complete_callback(&job.message_id, *outcome, now)
            .await?;
    }
    Ok(results.len())
}
