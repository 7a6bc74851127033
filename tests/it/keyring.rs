//! The keyring, for real: inside a private D-Bus session with an unlocked gnome-keyring, the
//! real binary logs in, the token is in the Secret Service (and on no disk file), a send uses
//! it, and logout removes it. CI installs dbus, gnome-keyring and libsecret-tools.

use crate::harness::{BIN, Relay, no_limits};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn login_send_logout_through_the_secret_service() {
    let missing: Vec<_> = ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        // CI installs them (.ci/run); a developer machine without them cannot run this test.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide {missing:?}: apt-get install dbus gnome-keyring libsecret-tools"
        );
        eprintln!(
            "SKIPPED: {missing:?} not installed (apt-get install dbus gnome-keyring libsecret-tools)"
        );
        return;
    }
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let config = tempfile::tempdir().unwrap();
    let data_home = tempfile::tempdir().unwrap();
    let script = r#"
        set -e
        printf %s pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null
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
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .env("BIN", BIN)
        .env("TOKEN", &token)
        .env("SERVER", &relay.url)
        .env("REFLECTO_CONFIG_DIR", config.path())
        .env("XDG_DATA_HOME", data_home.path())
        .env_remove("REFLECTO_TOKEN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("KEYRING-OK"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains(&token), "the token leaked to stderr");
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM messages"),
        1,
        "the send went through with the keyring's token"
    );
}
