//! The real `reflecto` binary as a user runs it: in a private config dir, with no keyring and
//! no REFLECTO_* from the test's own environment, so what a test asserts follows from its own
//! arguments; and the relay, token and config dir a test of the CLI starts from.

use super::{BIN, Relay, no_limits};
use reflecto::server::limits::{Layer, Limits};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

/// A well-formed sender token no relay knows.
pub const UNKNOWN_TOKEN: &str = "rfk_live_00000000000000000000000000000000";

/// What a user's shell may carry that would change what the binary does.
const OUTSIDE: [&str; 5] = [
    "REFLECTO_TOKEN",
    "REFLECTO_SERVER",
    "REFLECTO_PROFILE",
    "REFLECTO_RETRY_MAX_WAIT",
    "REFLECTO_DATA_DIR",
];

/// `command` with `config_dir` as its config dir, no keyring (no D-Bus) and none of the
/// variables in [`OUTSIDE`].
pub fn isolated<'a>(
    command: &'a mut std::process::Command,
    config_dir: &Path,
) -> &'a mut std::process::Command {
    command
        .env("REFLECTO_CONFIG_DIR", config_dir)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    for name in OUTSIDE {
        command.env_remove(name);
    }
    command
}

/// The binary, [`isolated`] in `config_dir`, to run to its end.
pub fn reflecto(config_dir: &Path) -> assert_cmd::Command {
    let mut command = std::process::Command::new(BIN);
    isolated(&mut command, config_dir);
    assert_cmd::Command::from_std(command)
}

/// `reflecto COMMAND --server SERVER` with `token` in REFLECTO_TOKEN.
pub fn reflecto_at(
    config_dir: &Path,
    command: &str,
    server: &str,
    token: &str,
) -> assert_cmd::Command {
    let mut cmd = reflecto(config_dir);
    cmd.args([command, "--server", server])
        .env("REFLECTO_TOKEN", token);
    cmd
}

/// Runs `command` to its end: it must exit `code` with `said` on its stderr.
pub fn assert_exit(
    command: &mut assert_cmd::Command,
    code: i32,
    said: &str,
) -> assert_cmd::assert::Assert {
    command
        .assert()
        .code(code)
        .stderr(predicates::str::contains(said))
}

/// `reflecto ARGS`, [`isolated`] in `config_dir` with `token` in REFLECTO_TOKEN, started with
/// `stdin` and its stdout and stderr piped: for a test that writes to it or signals it while it
/// runs.
pub fn spawn(config_dir: &Path, token: &str, args: &[&str], stdin: Stdio) -> Child {
    let mut command = std::process::Command::new(BIN);
    isolated(&mut command, config_dir)
        .env("REFLECTO_TOKEN", token)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line `child` writes on its stdout, once written. The pipe stays open so the child
/// can go on writing (what it wrote after that line in the same burst is not kept).
pub fn first_line(child: &mut Child) -> String {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    child.stdout = Some(stdout.into_inner());
    line
}

/// Sends SIG`name` (TERM, INT…) to `child` alone through kill(1), which must succeed.
pub fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// `n` lines of a batch, each a message "line I".
pub fn lines(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{\"message\":\"line {i}\"}}\n"))
        .collect()
}

/// Limits with every layer off but `layer`, which allows `n`.
pub fn only(layer: Layer, n: u64) -> Limits {
    let mut limits = no_limits();
    let field = match layer {
        Layer::TokenBurst => &mut limits.token_burst,
        Layer::TokenMonthly => &mut limits.token_monthly,
        Layer::ReceiverDaily => &mut limits.receiver_daily,
        Layer::IpMinute => &mut limits.ip_minute,
        Layer::IpHour => &mut limits.ip_hour,
    };
    *field = n;
    limits
}

/// What a test of the CLI starts from: a relay with alice (see `create_alice`), her token and
/// phone, and a private config dir for the binary.
pub struct Sender {
    pub relay: Relay,
    pub token: String,
    /// Alice's android device's id.
    pub phone: String,
    pub cfg: tempfile::TempDir,
}

impl Sender {
    pub async fn start(limits: Limits) -> Sender {
        let relay = Relay::start(limits).await;
        let (token, phone, _) = relay.alice();
        Sender {
            relay,
            token,
            phone,
            cfg: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary in this sender's config dir (see [`reflecto`]).
    pub fn reflecto(&self) -> assert_cmd::Command {
        reflecto(self.cfg.path())
    }

    /// `reflecto COMMAND --server <the relay>` with alice's token (see [`reflecto_at`]).
    pub fn command(&self, command: &str) -> assert_cmd::Command {
        reflecto_at(self.cfg.path(), command, &self.relay.url, &self.token)
    }
}

impl Relay {
    /// The id of the token labelled `label` (from `admin token list --json`).
    pub fn token_id(&self, label: &str) -> String {
        let list: serde_json::Value =
            serde_json::from_str(&self.admin(&["token", "list", "--json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label)
            .unwrap_or_else(|| panic!("no token labelled {label}: {list}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `admin token create` for alice, labelled `label`, capped at priority `cap`.
    pub fn capped_token(&self, label: &str, cap: &str) -> String {
        self.admin(&[
            "token",
            "create",
            "--user",
            "alice",
            "--label",
            label,
            "--priority-cap",
            cap,
        ])
    }
}
