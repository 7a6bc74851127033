//! WAL checkpoints off the writer's thread. SQLite's automatic checkpoint runs inside the
//! COMMIT that crosses its threshold, on the one thread every write waits for: copying the
//! WAL back into the database and its two fsyncs were an eighth of the relay's CPU under
//! `POST /v1/send` load, all of it on that thread. Here the commit only signals a thread of
//! its own, which checkpoints from its own connection (PASSIVE: it never blocks the writer or
//! a reader). Durability is unchanged: a commit is in the WAL before its caller hears of it,
//! whoever copies it on later.
//!
//! A PASSIVE checkpoint beside a busy writer may trail it forever, and SQLite only starts the
//! WAL over once a checkpoint has caught up; so past [`HARD_PAGES`] the writer checkpoints
//! inline as before, which the background pass has mostly done already. The WAL stays bounded.

use crate::store::{Result, StoreError};
use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};
use std::sync::mpsc;

/// The background pass starts at SQLite's own default threshold (pages in the WAL).
pub const SOFT_PAGES: i32 = 1000;
/// Past this the writer checkpoints itself.
pub const HARD_PAGES: i32 = 8 * SOFT_PAGES;

/// Replaces the automatic checkpoint of `conn` (the writer's) with the background one. An
/// in-memory database or a checkpointer that cannot open keeps SQLite's own.
pub fn install(conn: &mut Connection) -> Result<()> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()).map(str::to_owned) else {
        return Ok(());
    };
    let own = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    own.execute_batch("PRAGMA synchronous = NORMAL")?;
    // One pending signal is enough: a pass copies everything committed before it starts.
    let (signal, signals) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("reflecto-store-checkpoint".into())
        // Ends when the writer's connection, which holds `signal` in its hook, is dropped.
        .spawn(move || {
            while signals.recv().is_ok() {
                if let Err(e) = own.wal_checkpoint_v2(None::<&str>, Default::default()) {
                    tracing::debug!(error = %e, "background WAL checkpoint");
                }
            }
        })
        .map_err(|e| StoreError::Db(format!("starting the checkpoint thread: {e}")))?;
    conn.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        if pages >= HARD_PAGES {
            // As SQLite's own hook does, a checkpoint that cannot finish now is not the
            // commit's failure: the commit has happened.
            let _ = wal.checkpoint();
        } else if pages >= SOFT_PAGES {
            let _ = signal.try_send(());
        }
        Ok(())
    }))?;
    Ok(())
}
