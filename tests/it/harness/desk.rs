//! A paired computer driving the real binary: `reflecto pair` against a relay, then `reflecto
//! listen` with the computer's own config and data dirs, its stdout and stderr on channels.

use super::{BIN, Relay, admin, lines_of, spawn_piped, stdout_of, within_blocking};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

/// A paired computer: its own config and data dirs, and its device id.
pub struct Desk {
    pub config: tempfile::TempDir,
    pub data: tempfile::TempDir,
    pub device: String,
}

impl Desk {
    /// Pairs a new extension device for alice through the real `reflecto pair`.
    pub fn pair(data_dir: &Path, server: &str) -> Desk {
        let config = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let code = admin(data_dir, &["pair", "--user", "alice"]);
        let mut desk = Desk {
            config,
            data,
            device: String::new(),
        };
        let pair = desk
            .cmd()
            .args(["pair", &code, "--server", server, "--label", "desk"])
            .output();
        desk.device = stdout_of(pair.unwrap()).trim().to_owned();
        assert!(desk.device.starts_with("dev_"), "{}", desk.device);
        desk
    }

    /// The real binary with this computer's dirs and no keyring or notification service.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("REFLECTO_CONFIG_DIR", self.config.path())
            .env("XDG_DATA_HOME", self.data.path())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("REFLECTO_TOKEN")
            .env_remove("REFLECTO_SERVER")
            .env_remove("REFLECTO_PROFILE");
        cmd
    }

    /// `reflecto listen --poll --no-notify EXTRA`, which must succeed: what it printed.
    pub fn poll(&self, extra: &[&str]) -> String {
        stdout_of(self.poll_output(extra))
    }

    /// The same, however it ends.
    pub fn poll_output(&self, extra: &[&str]) -> std::process::Output {
        let listen = self
            .cmd()
            .args(["listen", "--poll", "--no-notify"])
            .args(extra)
            .output();
        listen.unwrap()
    }

    /// A relay with alice and her sender token, and a desk paired on it.
    pub async fn on_a_relay() -> (Relay, String, Desk) {
        let (relay, token) = Relay::with_alice().await;
        let desk = Desk::pair(relay.dir.path(), &relay.url);
        (relay, token, desk)
    }

    pub fn seen_file(&self) -> PathBuf {
        self.data.path().join("reflecto/listen-default.seen")
    }

    /// A running `reflecto listen ARGS` whose stdout lines arrive on a channel.
    pub fn spawn_listen(&self, args: &[&str]) -> Listening {
        let mut child = spawn_piped(self.cmd().arg("listen").args(args));
        let lines = lines_of(child.stdout.take().unwrap());
        let stderr_lines = lines_of(child.stderr.take().unwrap());
        Listening {
            child,
            lines,
            stderr_lines,
        }
    }
}

/// A running `reflecto listen`: the process, and its stdout and stderr lines as they come.
pub struct Listening {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub stderr_lines: mpsc::Receiver<String>,
}

impl Listening {
    /// The next `n` stdout lines (panics after a generous wait: a hang, not a timing check).
    pub fn take(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("line {i} of {n} never came"))
            })
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr_lines.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the process to exit on its own (panics after a generous wait).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = &mut self.child;
        within_blocking(Duration::from_secs(60), || child.try_wait().unwrap()).unwrap_or_else(
            |_| {
                let _ = self.child.kill();
                panic!("listen did not exit; stderr: {}", self.stderr());
            },
        )
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
