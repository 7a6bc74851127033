//! A private D-Bus session with an unlocked gnome-keyring (the Secret Service), and a computer
//! of alice's that runs scripts in one: for the stories about the real binary and the OS keyring.

use super::{BIN, Relay, tools};
use std::process::Command;

/// Runs the sh `script` in a private D-Bus session with an unlocked gnome-keyring, with `env`
/// and `BIN` set and the caller's token and session bus unset, and asserts that it ended with
/// `echo KEYRING-OK`. Returns its stdout and stderr (for checks that nothing leaked).
pub fn in_secret_service(script: &str, env: &[(&str, &str)]) -> (String, String) {
    let script = format!(
        "set -e\nprintf %s pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n{script}"
    );
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env("BIN", BIN)
        .envs(env.iter().copied())
        .env_remove("REFLECTO_TOKEN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("KEYRING-OK"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// Whether a private D-Bus session with gnome-keyring and `secret-tool` can run here (see
/// [`tools`]).
pub fn secret_service_available() -> bool {
    tools(
        &["dbus-run-session", "gnome-keyring-daemon", "secret-tool"],
        "dbus gnome-keyring libsecret-tools",
    )
}

/// A relay with alice, and a computer of hers with a fresh config dir and data home, where a
/// Secret Service session can run.
pub struct KeyringHost {
    pub relay: Relay,
    pub token: String,
    pub config: tempfile::TempDir,
    data_home: tempfile::TempDir,
}

impl KeyringHost {
    /// `None` (the test skips, or fails under CI) where the session cannot run.
    pub async fn start() -> Option<KeyringHost> {
        if !secret_service_available() {
            return None;
        }
        let (relay, token) = Relay::with_alice().await;
        Some(KeyringHost {
            relay,
            token,
            config: tempfile::tempdir().unwrap(),
            data_home: tempfile::tempdir().unwrap(),
        })
    }

    /// [`in_secret_service`] with the computer's dirs, `TOKEN` (alice's sender token),
    /// `SERVER` (the relay) and `env` set.
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> (String, String) {
        let mut all = vec![
            ("TOKEN", self.token.as_str()),
            ("SERVER", self.relay.url.as_str()),
            ("REFLECTO_CONFIG_DIR", self.config.path().to_str().unwrap()),
            ("XDG_DATA_HOME", self.data_home.path().to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        in_secret_service(script, &all)
    }
}
