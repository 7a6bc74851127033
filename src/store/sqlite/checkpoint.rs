//! The WAL checkpoint, kept off the writer's thread (PERF, issue 16).
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: the writer
//! copies the log's pages into the database file and syncs both files before it answers the
//! batch. On a disk whose sync takes up to ~200 ms, every write queued behind that commit
//! waits as long (`bench/RESULTS.md`, fifth pass), and the copy is a sixth of the writer's time
//! under sends. Here a thread of its own does that bulk work on its own connection: a PASSIVE
//! checkpoint never blocks the writer. When it is done, the writer checkpoints what was added
//! meanwhile, if that is little, in the hook after its next commit, as SQLite's own checkpoint
//! would; if it is not little, the thread makes another pass.
//!
//! Why the writer keeps the last step: the log restarts from its beginning only when a write
//! transaction begins on a log whose every frame is in the database file, and under steady
//! writes a checkpoint beside the writer never catches the frames of the commits made while
//! it ran, so the log would grow without bound.
//!
//! The threshold is SQLite's automatic one as this store set it before (10,000 frames, about
//! 40 MiB): a store that never reaches it never checkpoints before it closes, as before. The
//! disk-full story depends on that: on a 4 MiB tmpfs the log only grows, so once the disk is
//! full every write fails, the readiness probe's too (`store_faults::disk_full_on_tmpfs…`).
//! A checkpoint that fails (the disk is full) is retried after [`RETRY_AFTER`]; meanwhile the
//! log grows as it would have.

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the checkpoint thread waits after a failed pass before it takes a new request.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When the log is checkpointed, counted in frames (one page each).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// The log's size that starts a checkpoint.
    pub start: i64,
    /// What the writer checkpoints itself after a pass: at most this many frames added since.
    pub tail: i64,
    /// The log's size at which the writer checkpoints itself whatever the thread is doing, so
    /// the log stays bounded if the thread cannot keep up.
    pub cap: i64,
}

impl Thresholds {
    pub const STORE: Thresholds = Thresholds {
        start: 10_000,
        tail: 1_000,
        cap: 50_000,
    };
}

/// Where the checkpoint stands; written by the writer's hook and by the thread.
const IDLE: u8 = 0;
/// A pass is asked for or running on the thread.
const PASSING: u8 = 1;
/// A pass ended; `backfilled` says how far the database file holds the log.
const PASSED: u8 = 2;

#[derive(Default)]
pub struct Shared {
    state: AtomicU8,
    /// Frames of the log in the database file after the thread's last pass.
    backfilled: AtomicI64,
    /// Passes the thread made, tails the writer took after one, and checkpoints the writer
    /// made at the cap (tests).
    passes: AtomicU64,
    tails: AtomicU64,
    capped: AtomicU64,
}

/// What the writer's hook holds: the way to the thread, and the thread, which ends (and is
/// waited for) when the writer's connection closes and drops the hook.
struct Handoff {
    shared: Arc<Shared>,
    limits: Thresholds,
    ask: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Handoff {
    fn drop(&mut self) {
        drop(self.ask.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Handoff {
    /// Called after every commit of the writer with the log's size in frames. Never fails:
    /// an error here would make the COMMIT, which has happened, report one.
    fn after_commit(&self, wal: &mut Wal, frames: i64) {
        let shared = &self.shared;
        if frames >= self.limits.cap {
            shared.capped.fetch_add(1, Ordering::Relaxed);
            checkpoint_here(wal);
            return;
        }
        match shared.state.load(Ordering::Acquire) {
            PASSED => {
                let backfilled = shared.backfilled.load(Ordering::Acquire);
                if frames < backfilled {
                    // The log restarted after a pass that caught up while the writer was idle.
                    shared.state.store(IDLE, Ordering::Release);
                    self.ask_if_due(frames);
                } else if frames - backfilled <= self.limits.tail {
                    shared.tails.fetch_add(1, Ordering::Relaxed);
                    checkpoint_here(wal);
                    shared.state.store(IDLE, Ordering::Release);
                } else {
                    self.ask_pass();
                }
            }
            IDLE => self.ask_if_due(frames),
            _ => {}
        }
    }

    fn ask_if_due(&self, frames: i64) {
        if frames >= self.limits.start {
            self.ask_pass();
        }
    }

    fn ask_pass(&self) {
        self.shared.state.store(PASSING, Ordering::Release);
        if let Some(ask) = &self.ask {
            // A full channel already holds a request.
            let _ = ask.try_send(());
        }
    }
}

/// A PASSIVE checkpoint on the writer's connection; its failure is SQLite's own automatic
/// checkpoint's: nothing is lost, the log stays longer.
fn checkpoint_here(wal: &mut Wal) {
    if let Err(e) = wal.checkpoint() {
        tracing::debug!(error = %e, "store: the writer's checkpoint did not complete");
    }
}

/// Takes over the checkpoints of `writer` (a connection to `path`, which must not checkpoint
/// by itself any more): opens the thread's own connection and installs the writer's hook,
/// replacing SQLite's automatic checkpoint. The returned state is the tests' window on it.
pub fn attach(
    writer: &mut Connection,
    path: &Path,
    limits: Thresholds,
) -> rusqlite::Result<Arc<Shared>> {
    let conn = Connection::open(path)?;
    super::schema::configure(&conn)?;
    let shared = Arc::new(Shared::default());
    let (ask, asked) = mpsc::sync_channel(1);
    let on_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("reflecto-store-checkpoint".into())
        .spawn(move || passes(&conn, &asked, &on_thread))
        .expect("spawning the store checkpoint thread");
    let handoff = Handoff {
        shared: shared.clone(),
        limits,
        ask: Some(ask),
        thread: Some(thread),
    };
    writer.wal_hook(Some(move |wal: &mut Wal, frames: i32| {
        handoff.after_commit(wal, i64::from(frames));
        Ok(())
    }))?;
    Ok(shared)
}

#[cfg(test)]
impl Shared {
    fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    fn tails(&self) -> u64 {
        self.tails.load(Ordering::Relaxed)
    }

    fn capped(&self) -> u64 {
        self.capped.load(Ordering::Relaxed)
    }
}

/// The thread: one PASSIVE pass per request, until the writer's connection closes.
fn passes(conn: &Connection, asked: &mpsc::Receiver<()>, shared: &Shared) {
    while asked.recv().is_ok() {
        shared.passes.fetch_add(1, Ordering::Relaxed);
        match conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
            Ok((_, backfilled)) => {
                shared
                    .backfilled
                    .store(i64::from(backfilled), Ordering::Release);
                shared.state.store(PASSED, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: a checkpoint failed; retrying in a second");
                std::thread::sleep(RETRY_AFTER);
                shared.state.store(IDLE, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Thresholds = Thresholds {
        start: 40,
        tail: 16,
        cap: 400,
    };

    fn store(dir: &Path, limits: Thresholds) -> (Connection, Arc<Shared>) {
        let path = dir.join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::schema::configure(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)")
            .unwrap();
        let checkpoints = attach(&mut conn, &path, limits).unwrap();
        (conn, checkpoints)
    }

    /// One commit of a row of about a page: a frame or two.
    fn insert(conn: &Connection, n: i64) {
        conn.execute("INSERT INTO t (n, pad) VALUES (?1, zeroblob(4000))", [n])
            .unwrap();
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// The log file's size in frames (a 32-byte header, then a 24-byte header and a page each).
    fn log_frames(dir: &Path) -> u64 {
        let wal = std::fs::metadata(dir.join("t.db-wal")).map_or(0, |m| m.len());
        wal.saturating_sub(32) / (4096 + 24)
    }

    #[test]
    fn the_thread_copies_the_log_and_the_writer_takes_the_tail_and_restarts_it() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, checkpoints) = store(dir.path(), SMALL);
        let mut n = 0;
        while checkpoints.tails() < 3 {
            insert(&conn, n);
            n += 1;
            assert!(n < 20_000, "the writer never took the tail of a pass");
            // Commits a few milliseconds apart, as a relay's under load: a pass (two syncs)
            // ends within the tail's eight commits even on a slow disk.
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(checkpoints.passes() >= 3);
        // Restarted logs are written from their beginning: the file stays near the threshold
        // instead of holding every frame written.
        let frames = log_frames(dir.path());
        assert!(
            frames < SMALL.cap as u64,
            "{frames} frames after {n} commits"
        );
        assert!(n as u64 > frames, "{n} commits never outgrew the log");
        assert_eq!(rows(&conn), n);
    }

    #[test]
    fn a_log_under_the_threshold_is_never_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, checkpoints) = store(dir.path(), SMALL);
        let commits = SMALL.start / 4;
        for n in 0..commits {
            insert(&conn, n);
        }
        let counts = (
            checkpoints.passes(),
            checkpoints.tails(),
            checkpoints.capped(),
        );
        assert_eq!(counts, (0, 0, 0));
        // Every frame is still in the log: nothing copied, nothing restarted.
        assert!(log_frames(dir.path()) >= commits as u64);
    }

    #[test]
    fn the_writer_checkpoints_itself_at_the_cap_when_no_pass_comes() {
        let dir = tempfile::tempdir().unwrap();
        let never = Thresholds {
            start: i64::MAX,
            tail: 0,
            cap: 40,
        };
        let (conn, checkpoints) = store(dir.path(), never);
        for n in 0..400 {
            insert(&conn, n);
        }
        assert_eq!(checkpoints.passes(), 0);
        assert!(checkpoints.capped() > 0);
        let frames = log_frames(dir.path());
        assert!(frames < 100, "the log grew to {frames} frames past its cap");
        assert_eq!(rows(&conn), 400);
    }

    #[test]
    fn closing_the_writer_ends_the_thread_and_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, checkpoints) = store(dir.path(), SMALL);
        for n in 0..(SMALL.start * 3) {
            insert(&conn, n);
        }
        drop(conn);
        // The hook's drop joined the thread, which held the other reference.
        assert_eq!(Arc::strong_count(&checkpoints), 1);
        let reopened = Connection::open(dir.path().join("t.db")).unwrap();
        assert_eq!(rows(&reopened), SMALL.start * 3);
    }
}
