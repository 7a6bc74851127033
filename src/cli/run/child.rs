//! COMMAND itself: started with stdin inherited and its two outputs piped through us byte for
//! byte (each kept to its last lines on the way), SIGINT and SIGTERM passed on while it runs,
//! and its end with how long it took.

use super::last_lines::LastLines;
use super::outcome::Outcome;
use crate::api::{ApiError, ErrorCode};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How COMMAND ended, how long it ran, and the message text (its kept output, or why it could
/// not start).
pub struct Ended {
    pub outcome: Outcome,
    pub took: Duration,
    pub text: String,
}

/// How long output may still arrive after COMMAND ended: a background process it started may
/// hold the pipes open for ever, and must not hold `reflecto run` with them.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

type Kept = Arc<Mutex<LastLines>>;

pub async fn supervise(words: &[OsString], lines: usize) -> Result<Ended, ApiError> {
    let signals = Signals::listen()?;
    let started = Instant::now();
    let spawned = tokio::process::Command::new(&words[0])
        .args(&words[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Ok(not_started(&words[0], &e, started)),
    };
    let kept_out: Kept = Arc::new(Mutex::new(LastLines::new(lines)));
    let kept_err: Kept = Arc::new(Mutex::new(LastLines::new(lines)));
    let pumps = [
        pump(
            child.stdout.take().and_then(into_file),
            std::io::stdout(),
            &kept_out,
        ),
        pump(
            child.stderr.take().and_then(into_file),
            std::io::stderr(),
            &kept_err,
        ),
    ];
    let status = signals
        .forward_until_exit(&mut child)
        .await
        .map_err(|e| super::super::internal("waiting for the command", e))?;
    let took = started.elapsed();
    let deadline = Instant::now() + DRAIN_GRACE;
    while pumps.iter().any(|p| !p.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let texts = [&kept_out, &kept_err].map(|k| k.lock().expect("keeper").text());
    let text: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    Ok(Ended {
        outcome: Outcome::of(status),
        took,
        text: text.join("\n"),
    })
}

/// A command that cannot be started ends as in a shell: 127 when it is not found, 126 when it
/// cannot be executed; the error is said at once and is the notification's message.
fn not_started(program: &OsString, error: &std::io::Error, started: Instant) -> Ended {
    let program = program.to_string_lossy();
    let (code, why) = match error.kind() {
        std::io::ErrorKind::NotFound => (127, "command not found".to_owned()),
        std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_owned()),
        _ => (126, error.to_string()),
    };
    let text = format!("cannot run '{program}': {why}");
    eprintln!("{}", ApiError::new(ErrorCode::UsageError, text.clone()));
    Ended {
        outcome: Outcome::Exited(code),
        took: started.elapsed(),
        text,
    }
}

fn into_file<P: Into<PipeEnd>>(pipe: P) -> Option<std::fs::File> {
    pipe.into().0
}

/// A child pipe as a blocking file, for a plain thread to copy.
struct PipeEnd(Option<std::fs::File>);

macro_rules! pipe_end {
    ($type:ty) => {
        impl From<$type> for PipeEnd {
            fn from(pipe: $type) -> PipeEnd {
                #[cfg(unix)]
                let file = pipe.into_owned_fd().map(std::fs::File::from);
                #[cfg(windows)]
                let file = pipe.into_owned_handle().map(std::fs::File::from);
                PipeEnd(file.ok())
            }
        }
    };
}
pipe_end!(tokio::process::ChildStdout);
pipe_end!(tokio::process::ChildStderr);

/// Copies one output through as it comes (a thread, so a slow reader of ours slows COMMAND as a
/// direct pipe would, and nothing else). When our side is closed (`… | head -1`) the copy
/// stops and COMMAND meets the closed pipe, as it would without us.
fn pump(
    from: Option<std::fs::File>,
    mut to: impl Write + Send + 'static,
    kept: &Kept,
) -> JoinHandle<()> {
    let kept = Arc::clone(kept);
    std::thread::spawn(move || {
        let Some(mut from) = from else { return };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    kept.lock().expect("keeper").push(&buf[..n]);
                    if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// SIGINT and SIGTERM, caught from before COMMAND starts so that neither can end us first.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Signals, ApiError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen =
                |kind| signal(kind).map_err(|e| super::super::internal("listening for signals", e));
            Ok(Signals {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for COMMAND, passing SIGINT and SIGTERM on to it meanwhile.
    #[cfg(unix)]
    async fn forward_until_exit(
        mut self,
        child: &mut tokio::process::Child,
    ) -> std::io::Result<std::process::ExitStatus> {
        use rustix::process::Signal;
        loop {
            let signal = tokio::select! {
                status = child.wait() => return status,
                _ = self.interrupt.recv() => {
                    if terminal_signalled_the_group() {
                        continue;
                    }
                    Signal::INT
                }
                _ = self.terminate.recv() => Signal::TERM,
            };
            // Not yet waited for, so the pid is still COMMAND's (at worst a zombie's).
            let pid = child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(id as i32));
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    }

    #[cfg(not(unix))]
    async fn forward_until_exit(
        self,
        child: &mut tokio::process::Child,
    ) -> std::io::Result<std::process::ExitStatus> {
        child.wait().await
    }
}

/// Whether we run in the foreground of a terminal: then Ctrl-C's SIGINT went to the whole
/// process group, COMMAND included, and passing it on would deliver it twice (a second
/// SIGINT interrupts many programs' own clean-up). Read from /proc (Linux); elsewhere, no.
#[cfg(unix)]
fn terminal_signalled_the_group() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return false;
    };
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid …
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    matches!((fields.get(2), fields.get(5)), (Some(pgrp), Some(tpgid)) if pgrp == tpgid)
}
