//! The keyring, for real: inside a private D-Bus session with an unlocked gnome-keyring, the
//! real binary logs in, the token is in the Secret Service (and on no disk file), a send uses
//! it, and logout removes it. CI installs dbus, gnome-keyring and libsecret-tools.

use crate::harness::{BIN, Relay, tools};
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

#[tokio::test(flavor = "multi_thread")]
async fn login_send_logout_through_the_secret_service() {
    let Some(host) = KeyringHost::start().await else {
        return;
    };
    let script = r#"
        printf '%s\n' "$TOKEN" | "$BIN" login --server "$SERVER" --secure-storage-only
        stored=$(secret-tool lookup service reflecto username default)
        [ "$stored" = "$TOKEN" ] || { echo "keyring holds '$stored'" >&2; exit 10; }
        if grep -rqF "$TOKEN" "$REFLECTO_CONFIG_DIR"; then echo "token found on disk" >&2; exit 11; fi
        "$BIN" auth status | grep -q "OS keyring"
        "$BIN" send "sent with the keyring token"
        "$BIN" logout
        if secret-tool lookup service reflecto username default; then echo "still in keyring" >&2; exit 12; fi
        echo KEYRING-OK
    "#;
    let (_, stderr) = host.run(script, &[]);
    assert!(!stderr.contains(&host.token), "the token leaked to stderr");
    assert_eq!(
        host.relay.count("SELECT COUNT(*) FROM messages"),
        1,
        "the send went through with the keyring's token"
    );
}
