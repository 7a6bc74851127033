//! Web Push benchmark (release build): `cargo bench --bench webpush`.
//!
//! 1. Cost per message of what accept time adds (RFC 8291 encryption) and of what each attempt
//!    adds (the VAPID ES256 signature), in µs.
//! 2. Sends/s: N pre-encrypted messages signed (`VapidSigner`, one signature per origin per
//!    hour, as the worker will use it) and POSTed by `WebPushClient` to an in-process
//!    push service that answers 201 at once, next to FCM client posts/s to the test suite's fake
//!    FCM in the same run and with the same concurrency. Both measure the channel's send path
//!    alone (no store); `cargo bench --bench delivery` measures both through the worker.

// The bench uses part of the test fake; the rest is the tests'.
#[allow(dead_code)]
#[path = "../tests/it/fake_fcm.rs"]
mod fake_fcm;

use axum::http::StatusCode;
use chrono::Utc;
use reflecto::api::{Priority, sealed};
use reflecto::delivery::fcm::FcmClient;
use reflecto::delivery::webpush::client::{Answer, WebPushClient};
use reflecto::delivery::webpush::encrypt;
use reflecto::delivery::webpush::message::{Delivery, build};
use reflecto::delivery::webpush::subscription::Subscription;
use reflecto::delivery::webpush::vapid::{Subject, VapidKey, VapidSigner};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
const CONCURRENCY: usize = 64;
const CRYPTO_ROUNDS: usize = 5_000;

fn per_message(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / n as f64
}

/// A receiver's key pair as a browser would make it; only the public half is needed here.
fn subscription(endpoint: &str) -> Subscription {
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    Subscription {
        endpoint: endpoint.parse().unwrap(),
        p256dh: secret.public_key(),
        auth: [3u8; 16],
    }
}

/// Posts `MESSAGES` with `CONCURRENCY` tasks, each running `send(i)`; returns posts/s.
async fn rate<F, Fut>(send: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (send, next) = (send.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MESSAGES {
                    break;
                }
                send(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    MESSAGES as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let envelope = r#"{"type":"notification","payload":{"message":"backup of db1 finished in 4m12s","title":"backup","priority":"high","tags":["db"]},"source":"cron"}"#;
    let plaintext = sealed::plaintext("msg_0123456789abcdef0123456789abcdef", envelope);
    let big = sealed::plaintext("msg_big", &format!(r#"{{"m":"{}"}}"#, "x".repeat(2040)));

    // 1. Crypto cost.
    let sub = subscription("https://push.example.net:8443/p/abc");
    for (name, text) in [("typical", &plaintext), ("2 KB", &big)] {
        let start = Instant::now();
        for _ in 0..CRYPTO_ROUNDS {
            std::hint::black_box(encrypt::encrypt(text.as_bytes(), &sub).unwrap());
        }
        println!(
            "RFC 8291 encryption, {name} payload ({} bytes): {:.1} µs/message",
            text.len(),
            per_message(start.elapsed(), CRYPTO_ROUNDS)
        );
    }
    let key = VapidKey::generate();
    let subject = Subject::parse("mailto:ops@example.org").unwrap();
    let start = Instant::now();
    for _ in 0..CRYPTO_ROUNDS {
        std::hint::black_box(
            key.authorization(&sub.endpoint, &subject, Utc::now())
                .unwrap(),
        );
    }
    println!(
        "VAPID ES256 JWT signature: {:.1} µs/attempt",
        per_message(start.elapsed(), CRYPTO_ROUNDS)
    );

    // 2. Sends/s against a push service answering 201 at once.
    let app = axum::Router::new().fallback(|| async { StatusCode::CREATED });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sub = Arc::new(subscription(&format!("http://{addr}/push/bench")));
    // Encrypted at "accept time", as the job will store it.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..MESSAGES)
            .map(|_| encrypt::encrypt(plaintext.as_bytes(), &sub).unwrap())
            .collect(),
    );
    let client = Arc::new(WebPushClient::new(Duration::from_secs(30), true).unwrap());
    let signer = Arc::new(VapidSigner::new(key, subject));
    let webpush = rate(move |i| {
        let (client, sub, bodies, signer) =
            (client.clone(), sub.clone(), bodies.clone(), signer.clone());
        async move {
            let request = build(
                Delivery {
                    endpoint: &sub.endpoint,
                    ciphertext: bodies[i].clone(),
                    remaining_ttl: 3600,
                    priority: Priority::High,
                    key: None,
                },
                &signer,
                Utc::now(),
            )
            .unwrap();
            let answer = client.send(&request).await;
            assert_eq!(
                answer,
                Answer::Status {
                    status: 201,
                    retry_after: None
                }
            );
        }
    })
    .await;

    let fake = fake_fcm::FakeFcm::start().await;
    let key_file = fake.key_file();
    let fcm = Arc::new(FcmClient::from_key_file(key_file.path(), &fake.url).unwrap());
    let warm = fcm
        .send(&json!({"message": {"token": "warm", "data": {"id": "warm"}}}))
        .await
        .unwrap();
    assert_eq!(warm.status, 200);
    let fcm_rate = rate(move |_| {
        let fcm = fcm.clone();
        async move {
            let a = fcm
                .send(&json!({"message": {"token": "bench", "data": {"id": "bench"}}}))
                .await
                .unwrap();
            assert_eq!(a.status, 200);
        }
    })
    .await;
    println!("Web Push sends/s (sign + POST, {CONCURRENCY} in flight): {webpush:>8.0}");
    println!("FCM client posts/s (same run, same concurrency):     {fcm_rate:>8.0}");
}
