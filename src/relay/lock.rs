//! One relay per SQLite data dir: two relays on one store would each run a dispatcher over the
//! same jobs and keep their own rate-limit counters (SPEC §2.0; PostgreSQL, §3, is how relays
//! share state). The relay holds an exclusive lock on `reflecto.lock` for its whole life, with
//! its pid written inside so the second one can say who holds it, and once bound its listen
//! address on the second line, so `reflecto setup` finds the relay of a data dir (SPEC §2.5).
//! The OS releases the lock when the process dies, even by SIGKILL, so a stale file never
//! blocks a restart. `reflecto admin` and `reflecto setup` do not take the lock: they work
//! beside a running relay.

use crate::api::{ApiError, ErrorCode};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::Path;

pub const LOCK_FILE: &str = "reflecto.lock";

/// Held while the relay runs; dropping it releases the data dir.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
}

/// Takes the data dir's lock, creating the dir (0700) if needed. A dir already locked is a
/// usage error (exit 2) naming the holder's pid.
pub fn acquire(data_dir: &Path) -> Result<DataDirLock, ApiError> {
    let failed = |what: &str, e: std::io::Error| {
        ApiError::new(
            ErrorCode::CliInternalError,
            format!("{what} {}: {e}", data_dir.join(LOCK_FILE).display()),
        )
    };
    create_private_dir(data_dir).map_err(|e| failed("creating the data dir for", e))?;
    let path = data_dir.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| failed("opening", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.lines().next().unwrap_or("").trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "a process that has not written its pid yet".to_owned(),
            };
            // A conflict with the state of the machine, not bad input: exit 2 like a usage error.
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "another relay ({holder}) is already serving the data dir {}; stop it first, or give this relay its own --data-dir",
                    data_dir.display()
                ),
            ));
        }
        Err(TryLockError::Error(e)) => return Err(failed("locking", e)),
    }
    rewrite(&file, None).map_err(|e| failed("writing the pid to", e))?;
    Ok(DataDirLock { file })
}

/// The lock file's whole text: the pid, then the listen address once there is one.
fn rewrite(mut file: &File, addr: Option<SocketAddr>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    if let Some(addr) = addr {
        writeln!(file, "{addr}")?;
    }
    file.sync_all()
}

impl DataDirLock {
    /// Records the address the relay bound (after the pid), for `reflecto setup`.
    pub fn record_address(&self, addr: SocketAddr) -> std::io::Result<()> {
        rewrite(&self.file, Some(addr))
    }
}

/// What the lock file of `data_dir` says about the relay that last ran there: its pid and the
/// address it listened on. `None` when no relay has recorded an address there. It may have
/// stopped since: only a request to the address tells.
pub fn recorded(data_dir: &Path) -> Option<(u32, SocketAddr)> {
    let text = std::fs::read_to_string(data_dir.join(LOCK_FILE)).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let addr = lines.next()?.trim().parse().ok()?;
    Some((pid, addr))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_data_dir_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        assert_eq!(err.code.exit_code(), 2);
        assert!(
            err.message.contains(&format!("pid {}", std::process::id())),
            "{}",
            err.message
        );
        drop(held);
        acquire(dir.path()).expect("released when dropped");
    }

    #[test]
    fn the_listen_address_is_recorded_after_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path()).unwrap();
        assert_eq!(recorded(dir.path()), None, "no address before bind");
        let addr: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        held.record_address(addr).unwrap();
        assert_eq!(recorded(dir.path()), Some((std::process::id(), addr)));
        let err = acquire(dir.path()).unwrap_err();
        assert!(
            err.message.contains(&format!("pid {}", std::process::id())),
            "the holder is still named: {}",
            err.message
        );
    }
}
