//! `reflecto setup` (SPEC §2.5, issue 17's first hour): through the real binary against a real
//! relay, with a private HOME, XDG dirs and config dir and no D-Bus (so no keyring: secrets go
//! to the 0600 file). [`service`] covers `--service`.

mod service;

use crate::harness::{BIN, Relay, no_limits, stdout_of};
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A fresh HOME: nothing stored, nothing from the caller's environment.
pub(super) struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn xdg_config(&self) -> PathBuf {
        self.dir.path().join("xdg-config")
    }

    pub fn reflecto(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("HOME", self.dir.path())
            .env("USER", "alice")
            .env("XDG_CONFIG_HOME", self.xdg_config())
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("REFLECTO_CONFIG_DIR", self.dir.path().join("config"))
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .env_remove("REFLECTO_TOKEN")
            .env_remove("REFLECTO_SERVER")
            .env_remove("REFLECTO_PROFILE")
            .env_remove("REFLECTO_DATA_DIR")
            .env_remove("REFLECTO_DATABASE_URL")
            .env_remove("REFLECTO_CONFIG");
        cmd
    }

    /// `reflecto setup --json ARGS` on `data_dir`, asserting success: the summary and stderr.
    fn setup(&self, data_dir: &Path, args: &[&str]) -> (Value, String) {
        let out = self
            .reflecto()
            .args(["setup", "--json", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "setup failed: {stderr}");
        (serde_json::from_slice(&out.stdout).unwrap(), stderr)
    }

    /// `reflecto listen --poll --no-notify --json`: the notifications (envelope payloads) it
    /// printed.
    fn poll(&self) -> Vec<Value> {
        let listen = self
            .reflecto()
            .args(["listen", "--poll", "--no-notify", "--json"])
            .output();
        stdout_of(listen.unwrap())
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["envelope"]["payload"].clone())
            .collect()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn json(text: &str) -> Vec<Value> {
    serde_json::from_str(text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_makes_this_computer_a_sender_and_receiver() {
    let relay = Relay::start(no_limits()).await;
    let home = Home::new();
    // The whole road from a fresh HOME: setup, then a send; no secret passes through the test.
    let (summary, stderr) = home.setup(relay.dir.path(), &["--server", &relay.url]);
    assert_eq!(summary["user"], "alice", "the login name: {summary}");
    assert_eq!(summary["user_created"], true);
    assert_eq!(summary["token"]["created"], true);
    assert_eq!(summary["device"]["created"], true);
    for step in [
        "user 'alice' created",
        "created and stored",
        "test notification",
    ] {
        assert!(stderr.contains(step), "no progress line '{step}': {stderr}");
    }
    home.reflecto().args(["send", "hi"]).assert().success();

    let envelopes = home.poll();
    let titled = |t: &str| envelopes.iter().any(|e| e["title"] == t);
    assert!(
        titled("reflecto setup"),
        "no test notification: {envelopes:?}"
    );
    assert!(
        envelopes.iter().any(|e| e["message"] == "hi"),
        "no 'hi': {envelopes:?}"
    );
    // Sealed: the device has a public key, and the relay kept no message text in clear.
    let devices = json(&relay.admin(&["device", "list", "--json", "--user", "alice"]));
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["type"], "extension");
    assert!(devices[0]["public_key"].is_string(), "{devices:?}");
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM messages WHERE envelope IS NOT NULL"),
        0,
        "a sealed device's text was stored in clear"
    );
    // The phone's link comes last, on this relay, with a live code.
    let link = summary["phone_link"].as_str().unwrap();
    assert_eq!(
        link,
        format!(
            "{}/app/#code={}",
            relay.url,
            summary["phone_code"].as_str().unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_run_twice_reuses_what_it_made() {
    let relay = Relay::start(no_limits()).await;
    let home = Home::new();
    let (first, _) = home.setup(relay.dir.path(), &["--server", &relay.url]);
    let (second, stderr) = home.setup(relay.dir.path(), &["--server", &relay.url]);
    assert_eq!(second["user_created"], false);
    assert_eq!(second["token"]["created"], false);
    assert_eq!(second["device"]["created"], false);
    assert_eq!(first["token"]["id"], second["token"]["id"]);
    assert_eq!(first["device"]["id"], second["device"]["id"]);
    for said in [
        "user 'alice' exists; reusing it",
        "is already in profile 'default'",
        "this computer is already device",
    ] {
        assert!(
            stderr.contains(said),
            "the second run did not say '{said}': {stderr}"
        );
    }
    let devices = json(&relay.admin(&["device", "list", "--json", "--user", "alice"]));
    assert_eq!(
        devices.len(),
        1,
        "one device for this computer: {devices:?}"
    );
    let tokens = json(&relay.admin(&["token", "list", "--json", "--user", "alice"]));
    let host = host_name();
    let ours: Vec<_> = tokens
        .iter()
        .filter(|t| t["label"] == host.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "one token for this host: {tokens:?}");
    assert_eq!(ours[0]["revoked"], false);
    // Both test notifications reach the one device.
    let tests = home
        .poll()
        .iter()
        .filter(|e| e["title"] == "reflecto setup")
        .count();
    assert_eq!(tests, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_finds_the_relay_address_from_the_lock_file() {
    let mut relay = Relay::start(no_limits()).await;
    let lock = std::fs::read_to_string(relay.dir.path().join("reflecto.lock")).unwrap();
    let addr = relay.url.trim_start_matches("http://");
    assert_eq!(
        lock.lines().collect::<Vec<_>>(),
        [std::process::id().to_string().as_str(), addr],
        "the lock file holds the pid, then the listen address"
    );
    let home = Home::new();
    let (summary, stderr) = home.setup(relay.dir.path(), &[]);
    assert_eq!(summary["server"], relay.url.as_str());
    assert!(stderr.contains("reflecto.lock"), "{stderr}");
    home.reflecto().args(["send", "hi"]).assert().success();

    // A relay that stopped: its address no longer answers; setup says how to start one.
    let running = relay.running.take().unwrap();
    let _ = running.shutdown.send(());
    running.task.await.unwrap().unwrap();
    let out = home
        .reflecto()
        .args(["setup", "--data-dir"])
        .arg(relay.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error[usage_error]: no relay found")
            && stderr.contains("reflecto serve --data-dir"),
        "{stderr}"
    );
    // No store at all: the same, before anything is made.
    let empty = tempfile::tempdir().unwrap();
    home.reflecto()
        .args(["setup", "--data-dir"])
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(
            predicates::str::contains("no relay found")
                .and(predicates::str::contains("reflecto serve")),
        );
    assert!(
        !empty.path().join("reflecto.db").exists(),
        "setup made a store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_keeps_its_secrets_in_the_keyring() {
    if !crate::harness::secret_service_available() {
        return;
    }
    let relay = Relay::start(no_limits()).await;
    let home = Home::new();
    let config = home.dir.path().join("config");
    let script = r#"
        "$BIN" setup --data-dir "$DATA" --user alice
        for entry in default device-credential:default device-key:default; do
            secret-tool lookup service reflecto username "$entry" >/dev/null || { echo "no $entry" >&2; exit 10; }
        done
        if [ -e "$REFLECTO_CONFIG_DIR/credentials.toml" ]; then echo "secrets on disk" >&2; exit 11; fi
        "$BIN" send hi
        "$BIN" listen --poll --no-notify --json > "$HOME/seen"
        grep -q '"title":"reflecto setup"' "$HOME/seen" || { cat "$HOME/seen" >&2; exit 12; }
        grep -q '"message":"hi"' "$HOME/seen" || { cat "$HOME/seen" >&2; exit 13; }
        echo KEYRING-OK
    "#;
    let home_dir = home.dir.path().to_str().unwrap();
    let data = relay.dir.path().to_str().unwrap();
    let xdg_data = home.dir.path().join("xdg-data");
    let (_, stderr) = crate::harness::in_secret_service(
        script,
        &[
            ("HOME", home_dir),
            ("DATA", data),
            ("REFLECTO_CONFIG_DIR", config.to_str().unwrap()),
            ("XDG_DATA_HOME", xdg_data.to_str().unwrap()),
        ],
    );
    assert!(
        !stderr.contains("warning:"),
        "a secret fell back to a file: {stderr}"
    );
}

/// SPEC §2.5: setup's last step prints the phone's pairing link and its QR code, which a
/// decoder that is not ours (zbarimg) reads back as that link.
#[tokio::test(flavor = "multi_thread")]
async fn setup_prints_the_phone_link_and_its_qr_code() {
    if !crate::harness::tools(&["zbarimg"], "zbar-tools") {
        return;
    }
    let relay = Relay::start(no_limits()).await;
    relay.admin(&["user", "add", "alice"]);
    let home = Home::new();
    let setup = home
        .reflecto()
        .args(["setup", "--server", &relay.url, "--data-dir"])
        .arg(relay.dir.path())
        .output();
    let stdout = stdout_of(setup.unwrap());
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{}/app/#code=", relay.url)),
        "{stdout}"
    );
    let link = lines[0].to_owned();
    let drawn: Vec<String> = lines[1..].iter().map(|l| l.to_string()).collect();
    let decoded = tokio::task::spawn_blocking(move || {
        crate::harness::decode_terminal(&drawn.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert_eq!(decoded, link);
}
