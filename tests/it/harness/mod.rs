//! A real relay on port 0 in a temp data dir, and what the stories drive it with: the
//! operator's fixtures ([`admin`]), one typed client ([`client`]), requests written out by hand
//! ([`requests`], [`raw_http`]), one way to wait ([`eventually`]), the raw stream ([`sse`]), the
//! real binary as a process ([`process`]), a paired computer running it ([`desk`]), one with the
//! OS keyring ([`secret_service`]), the real tools a test needs ([`tools`]), QR codes decoded
//! ([`qr`]) and what files hold ([`files`]).

mod admin;
mod client;
mod commands;
mod desk;
mod eventually;
mod files;
mod process;
mod qr;
mod raw_http;
mod requests;
mod secret_service;
mod sse;
mod tools;

pub use admin::{
    add_extension, admin, alice_via, alice_with_desk, create_alice, create_alice_on_postgres,
    device_via, pg_admin,
};
pub use client::{Api, code_of, field_of_each, keys_of, send_each, subscription};
pub use commands::{
    Sender, UNKNOWN_TOKEN, assert_exit, first_line, isolated, lines, only, reflecto, reflecto_at,
    signal, spawn,
};
pub use desk::Desk;
pub use eventually::{eventually, eventually_blocking, within, within_blocking};
pub use files::{assert_relative_links, files_containing};
pub use process::{
    KillOnDrop, Serving, assert_refused, free_port, json_stdout_of, lines_of, serve_via, sigterm,
    spawn_announcing, spawn_piped, stdout_of,
};
pub use qr::{decode_svg, decode_terminal};
pub use raw_http::{content_length, raw_header};
pub use requests::{expect_429, get_status, header, send_status, token_check, too_large};
pub use secret_service::{KeyringHost, in_secret_service, secret_service_available};
pub use sse::{SseEvents, read_sse_events};
pub use tools::{python_with, required, runs, tools};

use reflecto::relay::config::PartialConfig;
use reflecto::relay::{RunningRelay, ServeConfig};
use reflecto::server::Clock;
use reflecto::server::limits::Limits;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_reflecto");

pub fn no_limits() -> Limits {
    Limits {
        token_burst: 0,
        token_monthly: 0,
        receiver_daily: 0,
        ip_minute: 0,
        ip_hour: 0,
    }
}

pub struct Relay {
    pub dir: tempfile::TempDir,
    pub running: Option<RunningRelay>,
    pub url: String,
    pub limits: Limits,
    /// The PostgreSQL database it runs on (`None`: SQLite in `dir`); its admin commands,
    /// users and restarts go there.
    pub database: Option<String>,
}

pub fn config(data_dir: &Path, limits: Limits) -> ServeConfig {
    let mut config = PartialConfig::default().resolve();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data_dir.to_path_buf();
    config.limits = limits;
    config
}

/// A fresh, empty database on the shared throwaway PostgreSQL cluster, or `None` (the test
/// is skipped) where PostgreSQL is not installed; under `CI` its absence fails the test.
pub fn pg_database() -> Option<String> {
    if !required(
        reflecto::pg_cluster::binaries().is_some(),
        "PostgreSQL",
        "apt-get install postgresql",
    ) {
        return None;
    }
    let cluster = reflecto::pg_cluster::shared().expect("starting the test PostgreSQL cluster");
    Some(cluster.create_database().expect("creating a test database"))
}

impl Relay {
    /// A relay on the PostgreSQL database at `url` (its data dir holds nothing).
    pub async fn start_on_postgres(url: &str, limits: Limits) -> Relay {
        Relay::start_with(limits, Arc::new(reflecto::server::SystemClock), |c| {
            c.database = Some(url.to_owned())
        })
        .await
    }

    pub async fn start(limits: Limits) -> Relay {
        Relay::start_with(limits, Arc::new(reflecto::server::SystemClock), |_| {}).await
    }

    /// A relay whose Web Push may reach 127.0.0.1 (`--webpush-allow-local`), where the fake
    /// push service and the tests' unreachable endpoints listen.
    pub async fn start_allowing_local_webpush() -> Relay {
        Relay::start_with(no_limits(), Arc::new(reflecto::server::SystemClock), |c| {
            c.webpush_allow_local = true
        })
        .await
    }

    /// A relay whose time is `clock`, with `tweak` applied to its configuration.
    pub async fn start_with(
        limits: Limits,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        Relay::start_in(dir, limits, clock, tweak).await
    }

    /// A relay with no limits on the real clock, in a data dir the caller prepared (a restored
    /// backup, a dir under the target dir).
    pub async fn start_in_dir(dir: tempfile::TempDir) -> Relay {
        let clock = Arc::new(reflecto::server::SystemClock);
        Relay::start_in(dir, no_limits(), clock, |_| {}).await
    }

    /// The same, in a data dir the caller prepared.
    pub async fn start_in(
        dir: tempfile::TempDir,
        limits: Limits,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Relay {
        let mut config = config(dir.path(), limits);
        tweak(&mut config);
        let running = reflecto::relay::start_with_clock(&config, clock)
            .await
            .unwrap();
        let url = format!("http://{}", running.addr);
        Relay {
            dir,
            running: Some(running),
            url,
            limits,
            database: config.database,
        }
    }

    /// `GET /metrics`: the relay's Prometheus text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn state(&self) -> Arc<reflecto::server::AppState> {
        self.running.as_ref().unwrap().state.clone()
    }

    /// Stops gracefully and starts again on the same store (a restart).
    pub async fn restart(&mut self) {
        let old = self.running.take().unwrap();
        let _ = old.shutdown.send(());
        old.task.await.unwrap().unwrap();
        let mut config = config(self.dir.path(), self.limits);
        config.database = self.database.clone();
        let running = reflecto::relay::start(&config).await.unwrap();
        self.url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Runs `reflecto admin` on this relay's store with ARGS and returns stdout (asserting
    /// success).
    pub fn admin(&self, args: &[&str]) -> String {
        match &self.database {
            Some(url) => pg_admin(url, args),
            None => admin(self.dir.path(), args),
        }
    }

    /// A user with one android and one extension device, and a token: (token, android id, extension id).
    pub fn alice(&self) -> (String, String, String) {
        alice_via(&|args| self.admin(args))
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn send_json(&self, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.http()
            .post(format!("{}/v1/send", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Every committed envelope, oldest first, read through a separate connection.
    pub fn envelopes(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.dir.path().join("reflecto.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT envelope FROM messages ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Rows in a table of the relay's store, read through a separate connection.
    pub fn count(&self, sql: &str) -> i64 {
        count(self.dir.path(), sql)
    }
}

/// Rows in a table of the store in `data`, read through a separate connection.
pub fn count(data: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(data.join("reflecto.db"))
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Two relays on one fresh PostgreSQL database, or `None` where PostgreSQL is not installed
/// (see [`pg_database`]).
pub async fn two_relays_on_postgres() -> Option<(Relay, Relay)> {
    let url = pg_database()?;
    let a = Relay::start_on_postgres(&url, no_limits()).await;
    let b = Relay::start_on_postgres(&url, no_limits()).await;
    Some((a, b))
}

/// Time that moves only when a test moves it.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at the real time, so rows the admin commands write line up with it.
    pub fn now() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(reflecto::store::now_ms())))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
