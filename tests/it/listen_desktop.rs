//! `reflecto listen` against a real notification daemon (dunst on Xvfb, in a private D-Bus
//! session) and `reflecto pair` against a real Secret Service (gnome-keyring). CI installs
//! dbus, dunst, xvfb, xauth, libnotify-bin, gnome-keyring and libsecret-tools; without them
//! these tests fail under `CI` and skip with the reason otherwise.

use crate::harness::{BIN, Desk, KeyringHost, Relay, tools};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// dunst's urgency is not in its history, so each urgency gets its own timeout here and the
/// timeout tells them apart.
const DUNSTRC: &str = "[urgency_low]\n    timeout = 11\n[urgency_normal]\n    timeout = 12\n[urgency_critical]\n    timeout = 13\n";

/// A desk paired on a relay (see [`Desk::on_a_relay`]), where dunst on Xvfb in a private D-Bus
/// session can run; `None` (the test skips, or fails under CI) where it cannot.
async fn a_desk_beside_a_notification_daemon() -> Option<(Relay, String, Desk)> {
    if !tools(
        &["dbus-run-session", "Xvfb", "dunst", "dunstctl"],
        "dbus dunst xvfb xauth libnotify-bin",
    ) {
        return None;
    }
    Some(Desk::on_a_relay().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_reach_a_real_daemon_with_urgency_and_once_each() {
    let Some((relay, token, desk)) = a_desk_beside_a_notification_daemon().await else {
        return;
    };
    let mut ids = Vec::new();
    for body in [
        json!({"message": "nightly run ok", "title": "Backup done", "priority": "urgent",
               "url": "https://ci.example/run/1", "actions": [{"label": "Rerun", "url": "https://ci.example/rerun"}],
               "device": "desk"}),
        json!({"message": "disk at 81%", "title": "Disk", "priority": "low", "device": "desk"}),
    ] {
        let reply: Value = relay.send_json(&token, body).await.json().await.unwrap();
        ids.push(reply["id"].as_str().unwrap().to_owned());
    }
    // Two polls: the second finds the events acked (or, were an ack lost, already seen), so
    // each message is shown once.
    let script = r#"
        "$BIN" listen --poll; rc1=$?
        "$BIN" listen --poll; rc2=$?
        dunstctl close-all; sleep 0.3
        dunstctl history > "$HISTORY"
        kill $D $X
        echo "polls: $rc1 $rc2"
        [ $rc1 = 0 ] && [ $rc2 = 0 ]
    "#;
    let (mut session, history) = with_dunst(&desk, 91, script);
    let out = session.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !stderr.contains("no desktop notification service"),
        "dunst was not reached: {stderr}"
    );
    let history: Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    let shown: Vec<(String, String, i64)> = history["data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["summary"]["data"].as_str().unwrap().to_owned(),
                n["body"]["data"].as_str().unwrap().to_owned(),
                n["timeout"]["data"].as_i64().unwrap() / 1_000_000,
            )
        })
        .collect();
    let mut shown_sorted = shown.clone();
    shown_sorted.sort();
    assert_eq!(
        shown_sorted,
        [
            ("Backup done".to_owned(), "nightly run ok".to_owned(), 13),
            ("Disk".to_owned(), "disk at 81%".to_owned(), 11),
        ],
        "each message shown once, urgent → critical, low → low: {shown:?}"
    );
    // Both lines were printed once too.
    assert_eq!(
        stdout
            .matches("[urgent] Backup done: nightly run ok")
            .count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("[low] Disk: disk at 81%").count(),
        1,
        "{stdout}"
    );
    assert!(ids.iter().all(|id| id.starts_with("msg_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_keeps_the_credential_and_private_key_in_the_secret_service_only() {
    let Some(host) = KeyringHost::start().await else {
        return;
    };
    let code = host.relay.admin(&["pair", "--user", "alice"]);
    let script = r#"
        "$BIN" pair "$CODE" --server "$SERVER" --label keyring-desk
        cred=$(secret-tool lookup service reflecto username device-credential:default)
        key=$(secret-tool lookup service reflecto username device-key:default)
        case "$cred" in rfd_live_*) ;; *) echo "no credential in the keyring" >&2; exit 10;; esac
        [ ${#key} -ge 43 ] || { echo "no private key in the keyring" >&2; exit 11; }
        for secret in "$cred" "$key"; do
          if grep -rqF "$secret" "$REFLECTO_CONFIG_DIR" "$XDG_DATA_HOME"; then echo "a secret is on disk" >&2; exit 12; fi
        done
        [ ! -e "$REFLECTO_CONFIG_DIR/credentials.toml" ] || { echo "a credentials file was written" >&2; exit 13; }
        REFLECTO_TOKEN="$TOKEN" "$BIN" send --server "$SERVER" -d keyring-desk "opened with the keyring's key" >/dev/null
        "$BIN" listen --poll --no-notify | grep -q "opened with the keyring's key"
        echo KEYRING-OK
    "#;
    let (stdout, stderr) = host.run(script, &[("CODE", &code)]);
    assert!(
        !stderr.contains("rfd_live_"),
        "the credential leaked to stderr"
    );
    let device = stdout
        .lines()
        .find(|l| l.starts_with("dev_"))
        .unwrap_or_else(|| panic!("pair printed no device id: {stdout}"));
    let config_text = std::fs::read_to_string(host.config.path().join("config.toml")).unwrap();
    assert!(
        config_text.contains(device),
        "the profile names the device: {config_text}"
    );
}

/// SPEC §1.15: a running `reflecto listen` shows a newer message of a key in place of the one
/// on screen (D-Bus `replaces_id`), so dunst displays one notification, the newer one.
#[tokio::test(flavor = "multi_thread")]
async fn listen_replaces_the_notification_of_a_key_in_place() {
    let Some((relay, token, desk)) = a_desk_beside_a_notification_daemon().await else {
        return;
    };
    relay
        .api()
        .send(
            &token,
            json!({"message": "build running", "title": "CI", "key": "ci:42"}),
        )
        .await;
    // The second send waits until the first is on screen, so the relay does not supersede it
    // before `listen` showed it: what is tested is the replacement on screen.
    let script = r#"
        "$BIN" listen > "$OUT" 2>&1 & L=$!
        i=0; while [ "$(dunstctl count displayed)" != 1 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        REFLECTO_TOKEN="$TOKEN" "$BIN" send --server "$SERVER" --title CI --key ci:42 "build passed" >/dev/null
        i=0; while ! grep -q "build passed" "$OUT" && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        sleep 0.5
        echo "displayed: $(dunstctl count displayed)"
        dunstctl close-all; sleep 0.3
        dunstctl history > "$HISTORY"
        kill $L $D $X
    "#;
    let out_file = desk.data.path().join("listen.out");
    let (mut session, history) = with_dunst(&desk, 92, script);
    let out = session
        .env("OUT", &out_file)
        .env("TOKEN", &token)
        .env("SERVER", &relay.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listened = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(
        listened.contains("build running") && listened.contains("build passed"),
        "listen handled both: {listened}"
    );
    assert!(
        stdout.contains("displayed: 1\n"),
        "one notification on screen: {stdout}\nlisten: {listened}"
    );
    let history: Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    let bodies: Vec<&str> = history["data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"]["data"].as_str().unwrap())
        .collect();
    assert!(bodies.contains(&"build passed"), "{bodies:?}");
    assert!(
        !bodies.contains(&"build running"),
        "replaced, not closed: {bodies:?}"
    );
}

/// Started first in every session: Xvfb on display `:$N` and dunst with `$DUNSTRC`, waited for
/// until dunst owns the notification name; `$X` and `$D` are their pids.
const START_DUNST: &str = r#"
        Xvfb :$N -screen 0 640x480x24 -nolisten tcp >/dev/null 2>&1 & X=$!
        export DISPLAY=:$N
        i=0; while ! [ -e /tmp/.X11-unix/X$N ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        dunst -config "$DUNSTRC" >/dev/null 2>&1 & D=$!
        # Wait until dunst owns the name (asking dunstctl earlier would D-Bus-activate a second one).
        i=0; while ! dbus-send --session --dest=org.freedesktop.DBus --print-reply /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null | grep -q true && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
"#;

/// `script` after [`START_DUNST`] on `display`, in a private D-Bus session (see
/// [`in_session`]) with [`DUNSTRC`] written: the command, and the file `$HISTORY` names for
/// the script's `dunstctl history`.
fn with_dunst(desk: &Desk, display: u32, script: &str) -> (Command, PathBuf) {
    let dunstrc = desk.data.path().join("dunstrc");
    std::fs::write(&dunstrc, DUNSTRC).unwrap();
    let history = desk.data.path().join("history.json");
    let mut cmd = in_session(desk, &format!("{START_DUNST}{script}"), &dunstrc, &history);
    cmd.env("N", display.to_string()).env_remove("DISPLAY");
    (cmd, history)
}

/// `sh -c script` in a private D-Bus session with the paired computer's environment (config
/// and data dirs), `BIN`, `DUNSTRC` and `HISTORY` set for the script.
fn in_session(desk: &Desk, script: &str, dunstrc: &Path, history: &Path) -> Command {
    let mut cmd = Command::new("dbus-run-session");
    for (k, v) in desk.cmd().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["--", "sh", "-c", script])
        .env("BIN", BIN)
        .env("DUNSTRC", dunstrc)
        .env("HISTORY", history);
    cmd
}
