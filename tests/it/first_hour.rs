//! Issue 17's trips of the first hour that are about credentials and exit codes (SPEC §2.5),
//! each through the real binary with a private HOME, config and data dirs and no keyring (the
//! 0600 file fallback): a token stays with its relay, `login` stores nothing it could not
//! check, and every user mistake exits 2.

use crate::harness::{BIN, Relay, admin, no_limits, reflecto};
use assert_cmd::Command;
use predicates::prelude::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A private home for the binary: config, data and HOME in one temp dir, no D-Bus (so no
/// keyring: tokens go to the 0600 file) and no REFLECTO_* from outside.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// `login --no-verify` of `token` for `server` (offline set-up: stored unchecked).
    fn login_unchecked(&self, server: &str, token: &str) {
        self.reflecto()
            .args([
                "login",
                "--insecure-storage",
                "--no-verify",
                "--server",
                server,
            ])
            .write_stdin(format!("{token}\n"))
            .assert()
            .success();
    }

    fn reflecto(&self) -> Command {
        let mut cmd = reflecto(&self.config());
        cmd.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"));
        cmd
    }

    /// `login` of `token` for `server`, verified with the relay there.
    fn logging_in(&self, server: &str, token: &str) -> Command {
        let mut cmd = self.reflecto();
        cmd.args(["login", "--insecure-storage", "--server", server])
            .write_stdin(format!("{token}\n"));
        cmd
    }

    fn login(&self, server: &str, token: &str) {
        self.logging_in(server, token).assert().success();
    }

    /// Nothing of a login was written: no token, no profile.
    fn assert_nothing_stored(&self) {
        for file in ["credentials.toml", "config.toml"] {
            let path = self.config().join(file);
            assert!(!path.exists(), "{} was written", path.display());
        }
    }
}

/// A port where something listens and records every byte it is sent, answering 503: a relay
/// the token does not belong to.
struct Eavesdropper {
    url: String,
    heard: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl Eavesdropper {
    fn start() -> Eavesdropper {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_millis(500)))
                            .unwrap();
                        let mut buf = [0u8; 8192];
                        if let Ok(n) = conn.read(&mut buf) {
                            h.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        let _ = conn.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                    }
                    // A non-blocking accept with nobody waiting: look again shortly, until
                    // the test is over.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Eavesdropper { url, heard, stop }
    }

    fn heard(&self) -> String {
        String::from_utf8_lossy(&self.heard.lock().unwrap()).into_owned()
    }
}

impl Drop for Eavesdropper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A URL on which nothing listens.
fn closed_port_url() -> String {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_token_is_never_sent_to_another_server() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let home = Home::new();
    home.login(&relay.url, &token);
    let other = Eavesdropper::start();

    // The stored token and another relay: refused before any request, naming both relays and
    // the three ways out.
    for command in [
        vec!["send", "to the wrong relay", "--retry-max-wait", "0"],
        vec!["status", "msg_00000000000000000000000000"],
    ] {
        home.reflecto()
            .args(&command)
            .args(["--server", &other.url])
            .assert()
            .code(2)
            .stderr(
                predicate::str::starts_with("error[usage_error]")
                    .and(predicate::str::contains(&relay.url))
                    .and(predicate::str::contains(&other.url))
                    .and(predicate::str::contains("--profile"))
                    .and(predicate::str::contains("login --server"))
                    .and(predicate::str::contains("REFLECTO_TOKEN"))
                    .and(predicate::str::contains(&token).not()),
            );
    }
    assert_eq!(other.heard(), "", "the other server was contacted");

    // The profile's own relay, however its URL is spelled, still gets it.
    for server in [relay.url.clone(), format!("{}/", relay.url)] {
        home.reflecto()
            .args(["send", "to its own relay", "--server", &server])
            .assert()
            .success();
    }
    home.reflecto()
        .args(["send", "no --server"])
        .assert()
        .success();
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 3);

    // A token given for this command goes where the command says.
    home.reflecto()
        .args([
            "send",
            "explicit",
            "--retry-max-wait",
            "0",
            "--server",
            &other.url,
        ])
        .env(
            "REFLECTO_TOKEN",
            "rfk_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        )
        .assert()
        .code(6);
    assert!(other.heard().contains("POST /v1/send"), "{}", other.heard());
    assert!(!other.heard().contains(&token), "the stored token leaked");
}

#[test]
fn login_to_an_unreachable_relay_stores_nothing() {
    let home = Home::new();
    let closed = closed_port_url();
    let token = "rfk_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345";
    home.logging_in(&closed, token).assert().code(6).stderr(
        predicate::str::starts_with("error[relay_unreachable]")
            .and(predicate::str::contains(format!(
                "connection refused by {}",
                &closed[7..]
            )))
            .and(predicate::str::contains("nothing was stored"))
            .and(predicate::str::contains("--no-verify"))
            .and(predicate::str::contains(token).not()),
    );
    home.assert_nothing_stored();
    // Offline set-up on purpose stores it unchecked.
    home.login_unchecked(&closed, token);
    assert!(
        std::fs::read_to_string(home.config().join("credentials.toml"))
            .unwrap()
            .contains(token)
    );
}

#[test]
fn login_without_a_server_asks_for_one() {
    let home = Home::new();
    let token = "rfk_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345";
    home.reflecto()
        .args(["login", "--insecure-storage"])
        .write_stdin(format!("{token}\n"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[usage_error]")
                .and(predicate::str::contains("--server"))
                .and(predicate::str::contains("REFLECTO_SERVER"))
                .and(predicate::str::contains("api.reflecto.dev").not()),
        );
    home.assert_nothing_stored();
    // A profile that already names its relay needs no --server to log in again.
    let closed = closed_port_url();
    home.login_unchecked(&closed, token);
    home.reflecto()
        .args(["login", "--insecure-storage", "--no-verify"])
        .write_stdin(format!("{token}\n"))
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("→ {closed}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_server_path_exits_2() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let home = Home::new();
    let wrong = format!("{}/nope", relay.url);
    home.reflecto()
        .args(["send", "x", "--retry-max-wait", "0", "--server", &wrong])
        .env("REFLECTO_TOKEN", &token)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[usage_error]")
                .and(predicate::str::contains(format!(
                    "{wrong}/v1/send answered 404"
                )))
                .and(predicate::str::contains("--server")),
        );
    home.logging_in(&wrong, &token).assert().code(2).stderr(
        predicate::str::starts_with("error[usage_error]")
            .and(predicate::str::contains(format!(
                "{wrong}/v1/token answered 404"
            )))
            .and(predicate::str::contains("nothing was stored")),
    );
    home.assert_nothing_stored();
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 0);
}

/// `status` of an id the relay does not know: the relay's `not_found` is the user's mistake.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_message_id_exits_2() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let unknown = format!("msg_{}", "0".repeat(32));
    Home::new()
        .reflecto()
        .args(["status", &unknown, "--server", &relay.url])
        .env("REFLECTO_TOKEN", &token)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[not_found]")
                // Trip 9: the relay's request id, so a report finds its log line.
                .and(predicate::str::is_match(r"\(request req_[0-9a-f]{24}\)\n$").unwrap()),
        );
}

/// A data dir with a store in it (one user), as an operator has after `admin user add`.
fn store_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["user", "add", "alice"]);
    dir
}

/// `reflecto admin --data-dir DATA_DIR COMMAND`, with no store or config named from outside.
fn store_admin(data_dir: &Path, command: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("admin")
        .arg("--data-dir")
        .arg(data_dir)
        .arg(command)
        .env_remove("REFLECTO_DATABASE_URL")
        .env_remove("REFLECTO_CONFIG");
    cmd
}

fn backup(data_dir: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = store_admin(data_dir, "backup");
    cmd.args(args);
    cmd
}

/// `admin backup` of the store in `data_dir` to `target`, which must exit 2 with `code`.
fn backup_refused(data_dir: &Path, target: &Path, code: &str) -> assert_cmd::assert::Assert {
    backup(data_dir, &[target.as_os_str()])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(format!("error[{code}]")))
}

#[test]
fn admin_backup_into_a_missing_directory_exits_2() {
    let data = store_dir();
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("no-such-dir");
    let file = missing.join("reflecto.db");
    backup_refused(data.path(), &file, "io_error").stderr(
        predicate::str::contains(missing.display().to_string())
            .and(predicate::str::contains("cli_internal_error").not()),
    );
    assert!(!missing.exists(), "the directory was created");
    // A directory where the file should be is the same kind of mistake.
    backup_refused(data.path(), out.path(), "io_error");
}

#[test]
fn admin_backup_refuses_to_overwrite_without_force() {
    let data = store_dir();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("reflecto.db");
    std::fs::write(&file, "yesterday's backup").unwrap();
    backup_refused(data.path(), &file, "conflict").stderr(
        predicate::str::contains(file.display().to_string())
            .and(predicate::str::contains("--force")),
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "yesterday's backup"
    );
    backup(data.path(), &[file.as_os_str(), "--force".as_ref()])
        .assert()
        .success();
    let copy = std::fs::read(&file).unwrap();
    assert!(
        copy.starts_with(b"SQLite format 3\0"),
        "not a database copy"
    );
    // A fresh file needs no --force.
    let fresh = out.path().join("fresh.db");
    backup(data.path(), &[fresh.as_os_str()]).assert().success();
    assert!(
        std::fs::read(&fresh)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
}

/// Trip 9: a person who opens the relay's address in a browser got a JSON 404.
#[tokio::test(flavor = "multi_thread")]
async fn the_relays_address_answers_a_page_not_a_json_404() {
    let relay = Relay::start(no_limits()).await;
    let response = reqwest::get(format!("{}/", relay.url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], "default-src 'self'");
    let page = response.text().await.unwrap();
    for link in ["/app/", "/openapi.json", "/health/ready"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
    }
    // Unknown paths are still the API's JSON 404.
    let unknown = reqwest::get(format!("{}/nope", relay.url)).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// Trip 9: desktop deliveries were missing from `reflecto_deliveries_total` and the latency
/// histogram, and `admin device list` called a device that never connected "reachable".
#[tokio::test(flavor = "multi_thread")]
async fn the_desktop_stream_is_in_the_metrics_and_devices_say_when_they_were_seen() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let (desk, credential) = relay.extension("desk");
    let listed = relay.admin(&["device", "list", "--user", "alice"]);
    let line = |listed: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&desk))
            .unwrap_or_else(|| panic!("{desk} not listed: {listed}"))
            .to_owned()
    };
    assert!(line(&listed).ends_with("\tnever seen"), "{listed}");

    let api = relay.api();
    api.send(
        &token,
        serde_json::json!({"message": "to the desk", "device": "desk"}),
    )
    .await;
    let (seq, _) = api.one_event(&credential).await;
    assert_eq!(api.ack(&credential, &[seq]).await["acked"], 1);

    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("reflecto_deliveries_total{channel=\"desktop\",outcome=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reflecto_dispatch_latency_seconds_count 1"),
        "{metrics}"
    );
    let listed = relay.admin(&["device", "list", "--user", "alice"]);
    assert!(line(&listed).contains("\tseen 20"), "{listed}");
    let json: serde_json::Value =
        serde_json::from_str(&relay.admin(&["device", "list", "--user", "alice", "--json"]))
            .unwrap();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == desk.as_str())
        .unwrap();
    // RFC 3339, as every time `admin --json` prints.
    let seen = entry["last_seen_at"].as_str().unwrap_or_default();
    assert!(seen.starts_with("20") && seen.ends_with('Z'), "{entry}");
}

/// Trip 9: a log line carried no message id, user, client IP or refusal reason, and nothing
/// tied a user's report to it. Now one line per request has the request id the client got,
/// the route, the client IP and, for a send, the message id, token id and number of devices;
/// a refusal adds its code and the 429 layer. No secret or message text.
#[tokio::test(flavor = "multi_thread")]
async fn each_request_logs_one_line_an_operator_can_use() {
    let data = tempfile::tempdir().unwrap();
    let (token, _, _) = crate::harness::create_alice(data.path());
    let mut command = std::process::Command::new(BIN);
    command.args(["serve", "--limit-token-burst", "1"]);
    let serving = crate::harness::serve_via(&mut command, data.path(), &[("REFLECTO_LOG", "info")]);
    let send = async |text: &str| {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/send", serving.url))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "message": text }))
            .send()
            .await
            .unwrap();
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, request_id, body)
    };
    let (status, accepted_id, body) = send("the secret launch code is 0000").await;
    assert_eq!(status, 200, "{body}");
    let message_id = body["id"].as_str().unwrap().to_owned();
    let (status, refused_id, _) = send("the secret launch code is 1111").await;
    assert_eq!(status, 429);

    let line_of = |request_id: &str| {
        crate::harness::eventually_blocking(
            "the request's log line",
            Duration::from_secs(10),
            || {
                serving
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(request_id) && l.contains("request"))
                    .cloned()
            },
        )
    };
    let accepted = line_of(&accepted_id);
    for field in [
        format!("message_id=\"{message_id}\""),
        "token_id=\"tok_".to_owned(),
        "devices=2".to_owned(),
        "client_ip=127.0.0.1".to_owned(),
        "route=/v1/send".to_owned(),
        "status=200".to_owned(),
    ] {
        assert!(accepted.contains(&field), "{field} missing: {accepted}");
    }
    let refused = line_of(&refused_id);
    for field in [
        "status=429",
        "code=\"rate_limit_exceeded\"",
        "layer=\"token_burst\"",
    ] {
        assert!(refused.contains(field), "{field} missing: {refused}");
    }
    let log = serving.log.lock().unwrap().join("\n");
    assert!(!log.contains("launch code"), "message text in the log");
    assert!(!log.contains(&token), "a token in the log");
}

/// Trips 7 and 10: the README's Usage made a device nobody listens to (every later send
/// targeted it, so `--wait` could never end), left a token in a file anyone could read, and
/// never said the PostgreSQL role must own its database.
#[test]
fn the_readme_leads_to_a_device_someone_listens_to_and_keeps_tokens_private() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let usage = readme
        .split("\n## Usage")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Usage section");
    assert!(!usage.contains("device add"), "a device nobody listens to");
    assert!(usage.contains("reflecto pair") && usage.contains("reflecto listen"));
    // A token written to a file is written under `umask 077` (the prose may wrap the line).
    let flat = usage.replace('\n', " ");
    let written =
        regex::Regex::new(r"(\(umask 077;\s*)?reflecto admin token create[^`|\n]*>").unwrap();
    let mut files = 0;
    for found in written.captures_iter(&flat) {
        files += 1;
        assert!(
            found.get(1).is_some(),
            "a token written readable: {}",
            &found[0]
        );
    }
    assert!(files > 0, "the Usage shows how to keep a copy");
    assert!(
        readme.contains("createdb --owner reflecto reflecto"),
        "the PostgreSQL role owns its database"
    );
}

/// Trip 10's other backup mistake: a directory the copy cannot be written into (here one no
/// one can create files in, even root) is the user's to fix: exit 2 `io_error`, not 1.
#[test]
fn admin_backup_where_it_cannot_be_written_exits_2() {
    let data = store_dir();
    let target = std::path::Path::new("/proc/reflecto-backup.db");
    backup_refused(data.path(), target, "io_error").stderr(predicate::str::contains(
        "cannot write the backup: creating /proc/reflecto-backup.db",
    ));
    assert!(!target.exists());
}

/// SPEC §2.5: a database URL is never needed on a command line — `admin copy` takes its target
/// from `REFLECTO_COPY_TO` too (here one nothing answers: the store error proves it was read,
/// and the password appears nowhere).
#[test]
fn admin_copy_takes_its_target_from_the_environment() {
    let data = store_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = store_admin(data.path(), "copy")
        .env(
            "REFLECTO_COPY_TO",
            format!("postgres://reflecto:s3cr3t-pw@127.0.0.1:{port}/reflecto"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("store_unreachable"), "{stderr}");
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
}
