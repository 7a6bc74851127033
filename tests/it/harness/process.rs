//! The real `reflecto serve` as a child process, for tests about what only a process shows
//! (signals, exit codes, log lines); and what every test running a real program needs from
//! its end (its stdout, once it succeeded) or from the machine (a free port).

use std::path::Path;
use std::process::Command;

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

/// The stdout of a program run to its end, which must have succeeded (the panic shows its
/// stderr and points at the caller).
#[track_caller]
pub fn stdout_of(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A program that ended with exit `code` and said `says` on stderr (the panic points at the
/// caller): its stderr, for more checks.
#[track_caller]
pub fn assert_refused(out: &std::process::Output, code: i32, says: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    stderr
}

/// Sends SIGTERM to `child` through the shell's `kill` (a graceful stop, as systemd asks).
pub fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The same, parsed as the one JSON value it printed.
#[track_caller]
pub fn json_stdout_of(out: std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout_of(out)).unwrap()
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server the test starts with a
/// fixed address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed and reaped when dropped, so a failing test leaves nothing behind.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (a fake service) with its stdout piped: the process, and the first line it
/// printed, which announces where it listens.
pub fn spawn_announcing(command: &mut Command) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (KillOnDrop(child), line)
}

/// Starts `command` with its stdout and stderr piped, for the test to read.
pub fn spawn_piped(command: &mut Command) -> std::process::Child {
    use std::process::Stdio;
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The lines a child process writes to `pipe` (its stdout or stderr), on a channel as they
/// come, read by a thread of their own so the child never blocks on a full pipe.
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}
