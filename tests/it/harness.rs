//! A real relay on port 0 in a temp data dir, and helpers to drive the real binary.

use reflecto::server::config::PartialConfig;
use reflecto::server::limits::Limits;
use reflecto::server::{Clock, RunningRelay, ServeConfig};
use std::path::Path;
use std::process::Command;
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
        let dir = tempfile::tempdir().unwrap();
        let running = reflecto::server::start(&config(dir.path(), limits))
            .await
            .unwrap();
        let url = format!("http://{}", running.addr);
        Relay {
            dir,
            running: Some(running),
            url,
            limits,
            database: None,
        }
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

    /// The same, in a data dir the caller prepared.
    pub async fn start_in(
        dir: tempfile::TempDir,
        limits: Limits,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Relay {
        let mut config = config(dir.path(), limits);
        tweak(&mut config);
        let running = reflecto::server::start_with_clock(&config, clock)
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
        let running = reflecto::server::start(&config).await.unwrap();
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
        let conn = rusqlite::Connection::open(self.dir.path().join("reflecto.db")).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    admin_on(&["--data-dir".as_ref(), data_dir.as_os_str()], args)
}

/// Runs `reflecto admin --database URL ARGS` and returns stdout (asserting success).
pub fn pg_admin(url: &str, args: &[&str]) -> String {
    admin_on(&["--database".as_ref(), url.as_ref()], args)
}

/// Runs `reflecto admin STORE ARGS` (STORE: `--data-dir DIR` or `--database URL`) and returns
/// stdout (asserting success).
pub fn admin_on(store: &[&std::ffi::OsStr], args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("admin")
        .args(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The error code of a nested or flat error body.
pub fn code_of(body: &serde_json::Value) -> String {
    body["error"]["code"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// In `data_dir`: user alice with an android device "pixel" (FCM token `fcm-1`), an extension
/// "laptop", and a token labelled "ci": (token, android id, extension id).
pub fn create_alice(data_dir: &Path) -> (String, String, String) {
    alice_via(&|args| admin(data_dir, args))
}

/// The same on the PostgreSQL database at `url`.
pub fn create_alice_on_postgres(url: &str) -> (String, String, String) {
    alice_via(&|args| pg_admin(url, args))
}

/// [`create_alice`] through `admin`, which runs `reflecto admin` on some store.
pub fn alice_via(admin: &dyn Fn(&[&str]) -> String) -> (String, String, String) {
    admin(&["user", "add", "alice"]);
    let phone = admin(&[
        "device",
        "add",
        "--user",
        "alice",
        "--label",
        "pixel",
        "--type",
        "android",
        "--fcm-token",
        "fcm-1",
    ]);
    let desk = admin(&[
        "device",
        "add",
        "--user",
        "alice",
        "--label",
        "laptop",
        "--type",
        "extension",
    ]);
    let token = admin(&["token", "create", "--user", "alice", "--label", "ci"]);
    (token, phone, desk.lines().next().unwrap().to_owned())
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

/// In `data_dir`: an extension (desktop) device of `user` labelled `label`: (device id, its
/// `rfd_live_…` stream credential).
pub fn add_extension(data_dir: &Path, user: &str, label: &str) -> (String, String) {
    extension_via(&|args| admin(data_dir, args), user, label)
}

/// [`add_extension`] through `admin`, which runs `reflecto admin` on some store.
pub fn extension_via(
    admin: &dyn Fn(&[&str]) -> String,
    user: &str,
    label: &str,
) -> (String, String) {
    let out = admin(&[
        "device",
        "add",
        "--user",
        user,
        "--label",
        label,
        "--type",
        "extension",
    ]);
    let mut lines = out.lines();
    let id = lines.next().unwrap().to_owned();
    let credential = lines.next().unwrap().to_owned();
    assert!(credential.starts_with("rfd_live_"), "{out}");
    (id, credential)
}

impl Relay {
    /// An extension device of alice (see [`add_extension`]).
    pub fn extension(&self, label: &str) -> (String, String) {
        extension_via(&|args| self.admin(args), "alice", label)
    }
}

/// A desktop stream being read: its SSE `notification` events one at a time.
pub struct SseEvents {
    resp: reqwest::Response,
    text: String,
    /// Whether the relay ended the stream (rather than a deadline passing).
    pub ended: bool,
}

impl SseEvents {
    pub fn new(resp: reqwest::Response) -> SseEvents {
        SseEvents {
            resp,
            text: String::new(),
            ended: false,
        }
    }

    /// The next `notification` event as (id, raw data), or `None` once the stream ended or
    /// `deadline` passed.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Option<(i64, String)> {
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let frame: String = self.text.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_owned))
                };
                if field("event:").as_deref() == Some("notification") {
                    return Some((
                        field("id:").unwrap().parse().unwrap(),
                        field("data:").unwrap(),
                    ));
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => {
                    self.ended = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }
}

/// Reads SSE `notification` events until `n` arrived or `wait` passed: (id, raw data) pairs.
pub async fn read_sse_events(
    resp: reqwest::Response,
    n: usize,
    wait: std::time::Duration,
) -> Vec<(i64, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stream = SseEvents::new(resp);
    let mut events = Vec::new();
    while events.len() < n {
        match stream.next(deadline).await {
            Some(event) => events.push(event),
            None => break,
        }
    }
    events
}

/// The real `reflecto serve` process on port 0: its address comes from its "listening" log
/// line, and its log lines are collected as they come. SIGKILLed when dropped, so a failing
/// test leaves nothing behind.
pub struct Serving {
    pub child: std::process::Child,
    pub url: String,
    /// Its log lines so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serving {
    /// Waits for the process to end (after a signal the test sent) and for its last log line:
    /// whether it exited successfully, and every line it logged.
    pub fn finish(&mut self) -> (bool, Vec<String>) {
        let ok = self.child.wait().unwrap().success();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (ok, self.log.lock().unwrap().clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `command` (the binary with `serve` and any flags of the test's) on `data`, listening on
/// 127.0.0.1:0 with the per-IP limits off and, of the log variables, only `log` set.
pub fn serve_via(command: &mut Command, data: &Path, log: &[(&str, &str)]) -> Serving {
    use std::io::BufRead;
    let mut child = command
        .arg("--data-dir")
        .arg(data)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--limit-ip-minute",
            "0",
            "--limit-ip-hour",
            "0",
        ])
        .env_remove("REFLECTO_LOG")
        .env_remove("RUST_LOG")
        .envs(log.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the relay exited before listening: {log:?}"))
            .unwrap();
        log.push(line.clone());
        if line.contains("reflecto relay listening")
            && let Some(rest) = line.split("addr=").nth(1)
        {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading stderr so the relay never blocks on a full pipe.
    let log = std::sync::Arc::new(std::sync::Mutex::new(log));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Serving {
        child,
        url: format!("http://{addr}"),
        log,
        reader: Some(reader),
    }
}

/// Whether `program ARGS…` runs and succeeds: a tool, or python3 importing the modules a test
/// needs.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A real part a test drives is there, or the test cannot run: under `CI` its absence fails the
/// test (.ci/run installs every part), elsewhere the test is skipped saying what to install.
pub fn required(found: bool, what: &str, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required under CI ({install})"
        );
        eprintln!("skipped: {what} not found ({install})");
    }
    found
}

/// Every command-line tool in `needed` is on PATH (see [`required`]).
pub fn tools(needed: &[&str], install: &str) -> bool {
    let missing: Vec<_> = needed
        .iter()
        .filter(|tool| !runs("sh", &["-c", &format!("command -v {tool}")]))
        .collect();
    required(
        missing.is_empty(),
        &format!("{missing:?}"),
        &format!("apt-get install {install}"),
    )
}

impl Relay {
    /// Sends `body` with `token` and returns the accepted message's id.
    pub async fn send_id(&self, token: &str, body: serde_json::Value) -> String {
        let reply: serde_json::Value = self.send_json(token, body).await.json().await.unwrap();
        reply["id"]
            .as_str()
            .unwrap_or_else(|| panic!("not accepted: {reply}"))
            .to_owned()
    }

    /// `GET /v1/messages/{id}` with `token`, as JSON.
    pub async fn message_status(&self, token: &str, id: &str) -> serde_json::Value {
        self.http()
            .get(format!("{}/v1/messages/{id}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
