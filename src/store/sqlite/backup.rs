//! `reflecto admin backup FILE`: a consistent copy of the store taken with SQLite's online
//! backup while the relay runs. The copy is one self-contained database file, private (0600);
//! restoring it is copying it to `<data dir>/reflecto.db` of a stopped relay.

use super::{SqliteStore, private};
use crate::store::{Result, StoreError};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How often a backup step may find the database busy before giving up (about 10 s).
const BUSY_RETRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

impl SqliteStore {
    /// Writes a consistent copy of the store to `dest`, replacing it only once complete.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = Path::new(&partial);
        let _ = std::fs::remove_file(partial);
        // The file system refused the copy (no such directory, no permission, read-only, full):
        // `admin backup` answers it as the user's to fix.
        let io = |what: &str, e: std::io::Error| {
            StoreError::Unavailable(format!("{what} {}: {e}", dest.display()))
        };
        private::create_private_file(partial).map_err(|e| io("creating", e))?;
        let copied = copy_into(self.path(), partial);
        if let Err(e) = copied {
            let _ = std::fs::remove_file(partial);
            return Err(e);
        }
        std::fs::rename(partial, dest).map_err(|e| io("writing", e))
    }
}

/// Copies every page in one step: one read transaction, so the copy is a single instant of
/// the store even while the relay commits (WAL readers never block the writer).
fn copy_into(source: &Path, dest: &Path) -> Result<()> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(5))?;
    let mut dst = Connection::open(dest)?;
    {
        let backup = Backup::new(&src, &mut dst)?;
        let mut busy = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if busy < BUSY_RETRIES => {
                    busy += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                _ => return Err(StoreError::Unavailable("the store stayed busy".into())),
            }
        }
    }
    // A copy that opens standalone, without a -wal beside it.
    dst.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}
