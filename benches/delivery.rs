//! Delivery benchmark (release build): `cargo bench --bench delivery`.
//!
//! 1. Sustained deliveries/s: N queued android jobs drained by the real dispatcher against the
//!    test suite's fake FCM answering at once, next to a baseline of the same number of plain
//!    HTTP posts to that fake with the same concurrency (the ceiling the fake and the loopback
//!    allow on this machine).
//!    Every send also targets a webpush device, so the same run then drains as many Web Push
//!    jobs (stored ciphertext, VAPID-signed POSTs) against an in-process push service answering
//!    201 at once: Web Push deliveries/s next to FCM deliveries/s.
//! 2. End-to-end latency at light load: from a send's 200 to the fake receiving it, p50/p99.
//!
//! `REFLECTO_BENCH_STORE=postgres` runs the same on a throwaway PostgreSQL cluster
//! (`reflecto::pg_cluster`: `fsync=off`, plus `synchronous_commit=off`, so a commit costs the
//! server's CPU, not the disk's syncs) instead of the embedded store in a temp dir.

// The bench uses part of the test fake; the rest is the tests'.
#[allow(dead_code)]
#[path = "../tests/it/fake_fcm.rs"]
mod fake_fcm;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reflecto::delivery::fcm::{FcmChannel, FcmClient};
use reflecto::delivery::webpush::client::WebPushClient;
use reflecto::delivery::webpush::vapid::{Subject, VapidKey, VapidSigner};
use reflecto::delivery::webpush::{WebPushChannel, load_vapid_key};
use reflecto::delivery::{Channels, Worker, WorkerSettings};
use reflecto::pg_cluster::{Extras, PgCluster};
use reflecto::relay::config::PartialConfig;
use reflecto::server::limits::Limits;
use reflecto::store::{Database, NewDevice, NewToken, Store, WebPushAddress};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: usize = 20_000;
const CONCURRENCY: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One `POST /v1/send` of `message`.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    message: String,
) -> reqwest::Response {
    http.post(format!("{url}/v1/send"))
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap()
}

/// Runs `worker` until it has delivered JOBS jobs of its `queue`; deliveries/s.
async fn drain(worker: &Worker, queue: &str) -> f64 {
    let start = Instant::now();
    let mut delivered = 0;
    while delivered < JOBS {
        let n = worker.run_once().await.unwrap();
        assert!(n > 0, "{queue} ran dry at {delivered}");
        delivered += n;
    }
    JOBS as f64 / start.elapsed().as_secs_f64()
}

/// The store the bench runs on, and the cluster that serves it when it is PostgreSQL.
fn bench_store(data: std::path::PathBuf) -> (Database, Option<PgCluster>) {
    match std::env::var("REFLECTO_BENCH_STORE").as_deref() {
        Ok("postgres") => {
            let extras = Extras {
                settings: vec![("synchronous_commit".into(), "off".into())],
                ..Extras::default()
            };
            let cluster = PgCluster::start_with(&extras).expect("a throwaway PostgreSQL cluster");
            let url = cluster.create_database().unwrap();
            println!("store: PostgreSQL (synchronous_commit=off, fsync=off)");
            (Database::Postgres(url), Some(cluster))
        }
        Ok("sqlite") | Err(_) => {
            println!("store: SQLite in {}", data.display());
            (Database::Sqlite(data), None)
        }
        Ok(other) => panic!("REFLECTO_BENCH_STORE is sqlite or postgres, not {other:?}"),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _cluster) = bench_store(dir.path().to_path_buf());
    // A push service that answers 201 at once.
    let push = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_addr = push.local_addr().unwrap();
    let push_app = axum::Router::new().fallback(|| async { StatusCode::CREATED });
    tokio::spawn(async move { axum::serve(push, push_app).await.unwrap() });
    let token = {
        let store = Store::open(&database, Limits::default(), 0).await.unwrap();
        store.add_user("bench", 0).await.unwrap();
        store
            .add_device(
                "bench",
                NewDevice {
                    label: "phone".into(),
                    device_type: reflecto::api::DeviceType::Android,
                    fcm_token: Some("fcm-bench".into()),
                    public_key: None,
                    webpush: None,
                },
                0,
            )
            .await
            .unwrap();
        store
            .add_device(
                "bench",
                NewDevice {
                    label: "browser".into(),
                    device_type: reflecto::api::DeviceType::Webpush,
                    fcm_token: None,
                    public_key: None,
                    webpush: Some(WebPushAddress {
                        endpoint: format!("http://{push_addr}/push/bench"),
                        p256dh: VapidKey::generate().public_key_b64(),
                        auth: URL_SAFE_NO_PAD.encode([3u8; 16]),
                    }),
                },
                0,
            )
            .await
            .unwrap();
        let new = NewToken {
            user: "bench".into(),
            label: "bench".into(),
            priority_cap: None,
            scope_devices: None,
            test: false,
        };
        store
            .create_token(new, 0)
            .await
            .unwrap()
            .1
            .expose()
            .to_owned()
    };
    let mut config = PartialConfig::default().resolve();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    if let Database::Postgres(url) = &database {
        config.database = Some(url.clone());
    }
    config.limits = Limits {
        token_burst: 0,
        token_monthly: 0,
        receiver_daily: 0,
        ip_minute: 0,
        ip_hour: 0,
    };
    let relay = reflecto::relay::start(&config).await.unwrap();
    let url = format!("http://{}", relay.addr);
    let fake = fake_fcm::FakeFcm::start().await;
    let key = fake.key_file();
    let http = reqwest::Client::new();

    // Queue JOBS sends (the dispatcher is not running yet).
    let queued = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url, token, next) = (http.clone(), url.clone(), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < JOBS {
                let r = send(&http, &url, &token, "bench".into()).await;
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "queued {JOBS} sends in {:.2}s",
        queued.elapsed().as_secs_f64()
    );

    // Baseline: the same number of posts straight at the fake, same concurrency.
    let client = FcmClient::from_key_file(key.path(), &fake.url).unwrap();
    let warm = client
        .send(&json!({"message": {"token": "warm", "data": {"id": "warm"}}}))
        .await
        .unwrap();
    assert_eq!(warm.status, 200);
    let client = Arc::new(client);
    let baseline_start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < JOBS {
                let a = client
                    .send(&json!({"message": {"token": "baseline", "data": {"id": "baseline"}}}))
                    .await
                    .unwrap();
                assert_eq!(a.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let baseline = JOBS as f64 / baseline_start.elapsed().as_secs_f64();

    // Drain the queue with the real worker.
    let settings = WorkerSettings {
        concurrency: CONCURRENCY,
        ..WorkerSettings::default()
    };
    let channels = Channels::fcm(FcmChannel::new(
        FcmClient::from_key_file(key.path(), &fake.url).unwrap(),
    ));
    let dispatcher = Worker::new(relay.state.relay.clone(), channels.clone(), settings);
    let drained = drain(&dispatcher, "queue").await;
    println!("FCM deliveries/s (worker, {CONCURRENCY} in flight):      {drained:>8.0}");
    println!("baseline posts/s to the fake (FCM client only):      {baseline:>8.0}");

    // The same number of Web Push jobs, queued by the same sends, through the same worker.
    let vapid = load_vapid_key(&relay.state.store, 0).await.unwrap();
    let webpush = Worker::new(
        relay.state.relay.clone(),
        Channels::webpush(WebPushChannel::new(
            WebPushClient::new(Duration::from_secs(30), true).unwrap(),
            VapidSigner::new(vapid, Subject::parse("mailto:bench@example.org").unwrap()),
        )),
        settings,
    );
    let webpush_rate = drain(&webpush, "web push queue").await;
    let metrics = relay.state.metrics.render(0, None);
    assert!(
        metrics.contains(&format!(
            "reflecto_deliveries_total{{channel=\"webpush\",outcome=\"delivered\"}} {JOBS}"
        )),
        "every Web Push job delivered: {metrics}"
    );
    println!("Web Push deliveries/s (worker, {CONCURRENCY} in flight): {webpush_rate:>8.0}");

    // End-to-end latency at light load: one send every 10 ms with the worker loop running.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(
        Arc::new(Worker::new(relay.state.relay.clone(), channels, settings)).run(stopped),
    );
    let mut accepted = Vec::new();
    for i in 0..300 {
        let r = send(&http, &url, &token, format!("latency {i}")).await;
        let r: serde_json::Value = r.json().await.unwrap();
        accepted.push((r["id"].as_str().unwrap().to_owned(), Instant::now()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let _ = worker.await;
    let arrivals = fake.first_arrivals();
    let mut latencies: Vec<Duration> = accepted
        .iter()
        .map(|(id, at)| arrivals[id].saturating_duration_since(*at))
        .collect();
    latencies.sort();
    println!(
        "end-to-end latency, accepted → fake received (300 sends, 1 per 10 ms): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
}
