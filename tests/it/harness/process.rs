//! The real `reflecto serve` as a child process, for tests about what only a process shows
//! (signals, exit codes, log lines).

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
