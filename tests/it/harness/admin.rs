//! The fixtures every story starts from (users, devices, tokens) made the way an operator
//! makes them: through the real `reflecto admin` on the relay's store.

use super::{BIN, Relay};
use std::path::Path;
use std::process::Command;

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
    // `device add` prints the id, then the credential (every type since SPEC §1.16).
    let id = |out: &str| out.lines().next().unwrap().to_owned();
    (token, id(&phone), id(&desk))
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
    let (id, credential) = device_via(admin, user, label, "extension", &[]);
    assert!(credential.starts_with("rfd_live_"), "{id}\n{credential}");
    (id, credential)
}

/// `reflecto admin device add --user USER --label LABEL --type KIND EXTRA` through `admin`:
/// (device id, its credential, or "" where none was printed).
pub fn device_via(
    admin: &dyn Fn(&[&str]) -> String,
    user: &str,
    label: &str,
    kind: &str,
    extra: &[&str],
) -> (String, String) {
    let mut args = vec![
        "device", "add", "--user", user, "--label", label, "--type", kind,
    ];
    args.extend_from_slice(extra);
    let out = admin(&args);
    let mut lines = out.lines().map(str::to_owned);
    (lines.next().unwrap(), lines.next().unwrap_or_default())
}

/// Alice on `relay` with a desktop device "desk": (her token, desk's id, its stream credential).
pub fn alice_with_desk(relay: &Relay) -> (String, String, String) {
    let (token, _, _) = relay.alice();
    let (desk, credential) = relay.extension("desk");
    (token, desk, credential)
}

impl Relay {
    /// An extension device of alice (see [`add_extension`]).
    pub fn extension(&self, label: &str) -> (String, String) {
        extension_via(&|args| self.admin(args), "alice", label)
    }

    /// A relay with no limits on the real clock, and alice (see [`alice_via`]): (the relay, her
    /// sender token).
    pub async fn with_alice() -> (Relay, String) {
        let relay = Relay::start(super::no_limits()).await;
        let (token, _, _) = relay.alice();
        (relay, token)
    }

    /// Alice (see [`alice_via`]) and her extension "desk": (her sender token, the desk's
    /// stream credential).
    pub fn alice_with_desk(&self) -> (String, String) {
        let (token, _, credential) = alice_with_desk(self);
        (token, credential)
    }
}
