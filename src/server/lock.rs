//! One relay per SQLite data dir: two relays on one store would each run a dispatcher over the
//! same jobs and keep their own rate-limit counters (SPEC §2.0; PostgreSQL, §3, is how relays
//! share state). The relay holds an exclusive lock on `reflecto.lock` for its whole life, with
//! its pid written inside so the second one can say who holds it. The OS releases the lock
//! when the process dies, even by SIGKILL, so a stale file never blocks a restart. `reflecto
//! admin` does not take the lock: it works beside a running relay.

use crate::api::{ApiError, ErrorCode};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

pub const LOCK_FILE: &str = "reflecto.lock";

/// Held while the relay runs; dropping it releases the data dir.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
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
            let holder = match holder.trim().parse::<u32>() {
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
    let write_pid = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    };
    write_pid(&mut file).map_err(|e| failed("writing the pid to", e))?;
    Ok(DataDirLock { _file: file })
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
}
