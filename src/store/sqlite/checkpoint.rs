//! The WAL checkpoint, kept off the writer's thread (PERF, issue 16).
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: the writer
//! syncs the log, copies its pages into the database file and syncs that file before it
//! answers the batch. On a disk whose sync takes up to ~200 ms, every write queued behind that
//! commit waits as long (`bench/RESULTS.md`, fifth pass); under sends the checkpoint was a
//! seventh of the writer's time (sixth pass). Here a thread of its own does that bulk work on
//! its own connection: a PASSIVE checkpoint never blocks the writer, and the thread syncs the
//! database file after it (SQLite syncs it only when a pass reaches the end of the log, which
//! a pass beside a busy writer does not). When the pass is done, the writer checkpoints what
//! was added meanwhile, if that is little, in the hook after its next commit, as SQLite's own
//! checkpoint would; if it is not little, the thread makes another pass, shorter each time.
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
//! A pass that fails (the disk is full) is asked again a second later; meanwhile the log
//! grows, and at [`Thresholds::cap`] the writer checkpoints itself, as before this module.

use crate::store::model::CheckpointCounts;
use rusqlite::Connection;
use rusqlite::hooks::Wal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// the log stays bounded if the thread cannot keep up or has failed.
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

/// What the writer's hook and the thread share.
#[derive(Default)]
pub struct Shared {
    state: AtomicU8,
    /// Frames of the log in the database file after the thread's last pass.
    backfilled: AtomicI64,
    /// Passes the thread made and those that failed, tails the writer took after one,
    /// checkpoints the writer made at the cap, and restarts of the log seen by the hook; the
    /// log's size after the writer's last commit (`/metrics`, and the tests).
    passes: AtomicU64,
    failures: AtomicU64,
    tails: AtomicU64,
    capped: AtomicU64,
    restarts: AtomicU64,
    log_frames: AtomicI64,
    /// Held by a test to stop the thread between taking a request and making its pass.
    #[cfg(test)]
    gate: std::sync::RwLock<()>,
}

impl Shared {
    /// The counts `/metrics` reports.
    pub fn counts(&self) -> CheckpointCounts {
        CheckpointCounts {
            passes: self.passes.load(Ordering::Relaxed),
            failed_passes: self.failures.load(Ordering::Relaxed),
            tails: self.tails.load(Ordering::Relaxed),
            at_cap: self.capped.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            log_frames: self.log_frames.load(Ordering::Relaxed),
        }
    }
}

/// What the writer's hook holds: the way to the thread, and the thread, which ends (and is
/// waited for) when the writer's connection closes and drops the hook.
struct Handoff {
    shared: Arc<Shared>,
    limits: Thresholds,
    /// The log's size after the previous commit: a smaller one means the log restarted.
    last_frames: i64,
    /// The log restarted since the pass in hand was asked for: that pass is moot.
    restarted_since_ask: bool,
    /// The log is past the cap (its warning is logged once per crossing).
    over_cap: bool,
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
    fn after_commit(&mut self, wal: &mut Wal, frames: i64) {
        if frames < self.last_frames {
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            self.restarted_since_ask = true;
        }
        self.last_frames = frames;
        self.shared.log_frames.store(frames, Ordering::Relaxed);
        if frames >= self.limits.cap {
            if !self.over_cap {
                tracing::warn!(
                    frames,
                    "store: the WAL is past its cap; the writer checkpoints it"
                );
                self.over_cap = true;
            }
            self.shared.capped.fetch_add(1, Ordering::Relaxed);
            checkpoint_here(wal, "at the cap");
            return;
        }
        self.over_cap = false;
        match self.shared.state.load(Ordering::Acquire) {
            PASSED if self.restarted_since_ask => {
                self.shared.state.store(IDLE, Ordering::Release);
                self.ask_if_due(frames);
            }
            PASSED => {
                let backfilled = self.shared.backfilled.load(Ordering::Acquire);
                if frames - backfilled <= self.limits.tail {
                    self.shared.tails.fetch_add(1, Ordering::Relaxed);
                    checkpoint_here(wal, "after a pass");
                    self.shared.state.store(IDLE, Ordering::Release);
                } else {
                    self.ask_pass();
                }
            }
            IDLE => self.ask_if_due(frames),
            _ => {}
        }
    }

    fn ask_if_due(&mut self, frames: i64) {
        if frames >= self.limits.start {
            self.ask_pass();
        }
    }

    fn ask_pass(&mut self) {
        self.restarted_since_ask = false;
        self.shared.state.store(PASSING, Ordering::Release);
        if let Some(ask) = &self.ask
            && let Err(mpsc::TrySendError::Disconnected(())) = ask.try_send(())
        {
            // A full channel already holds a request; a closed one means the thread is gone.
            tracing::error!(
                "store: the checkpoint thread is gone; the writer checkpoints at the cap"
            );
            self.ask = None;
        }
    }
}

/// A PASSIVE checkpoint on the writer's connection. Its failure is SQLite's own automatic
/// checkpoint's: nothing is lost, the log stays longer and is checkpointed again later.
fn checkpoint_here(wal: &mut Wal, when: &'static str) {
    match wal.checkpoint() {
        Ok(()) => {}
        // The thread's pass holds the checkpoint: the next commit tries again.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
        Err(e) => {
            tracing::warn!(error = %e, when, "store: the writer's checkpoint did not complete")
        }
    }
}

/// Takes over the checkpoints of `writer` (a connection to `path`, which must not checkpoint
/// by itself any more): opens the thread's own connection and installs the writer's hook,
/// replacing SQLite's automatic checkpoint. The returned state is `/metrics`' window on it,
/// and the tests'.
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
    let db = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("reflecto-store-checkpoint".into())
        .spawn(move || passes(&conn, &db, &asked, &on_thread))
        .expect("spawning the store checkpoint thread");
    let mut handoff = Handoff {
        shared: shared.clone(),
        limits,
        last_frames: 0,
        restarted_since_ask: false,
        over_cap: false,
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
    fn passed(&self) -> bool {
        self.state.load(Ordering::Acquire) == PASSED
    }
}

/// The thread: one PASSIVE pass per request, until the writer's connection closes.
fn passes(conn: &Connection, db: &Path, asked: &mpsc::Receiver<()>, shared: &Shared) {
    while asked.recv().is_ok() {
        shared.passes.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        drop(shared.gate.read());
        let began = Instant::now();
        match pass(conn, db) {
            Ok(backfilled) => {
                tracing::debug!(
                    backfilled,
                    took_ms = began.elapsed().as_millis() as u64,
                    "store: checkpoint pass"
                );
                shared.backfilled.store(backfilled, Ordering::Release);
                shared.state.store(PASSED, Ordering::Release);
            }
            Err(e) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "store: a checkpoint pass failed; asking again in a second");
                std::thread::sleep(RETRY_AFTER);
                shared.state.store(IDLE, Ordering::Release);
            }
        }
    }
}

/// Copies the log into the database file and syncs the file; how many frames it holds now.
fn pass(conn: &Connection, db: &Path) -> Result<i64, String> {
    let (_, backfilled) = conn
        .wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE)
        .map_err(|e| e.to_string())?;
    // What SQLite leaves unsynced when the pass stops short of the log's end: the writer's
    // checkpoint after it would otherwise sync every page copied here, inside its commit.
    std::fs::File::open(db)
        .and_then(|file| file.sync_data())
        .map_err(|e| format!("syncing the database file: {e}"))?;
    Ok(i64::from(backfilled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, limits: Thresholds) -> (Connection, Arc<Shared>) {
        let path = dir.join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::schema::configure(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)")
            .unwrap();
        let checkpoints = attach(&mut conn, &path, limits).unwrap();
        (conn, checkpoints)
    }

    /// One commit of a row of about a page: about three frames (the leaf, its parent, page 1).
    fn insert(conn: &Connection, n: i64) {
        conn.execute("INSERT INTO t (n, pad) VALUES (?1, zeroblob(4000))", [n])
            .unwrap();
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// The log file's size in frames (a 32-byte header, then a 24-byte header and a page each):
    /// its high-water mark, as nothing here truncates it.
    fn log_frames(dir: &Path) -> i64 {
        let wal = std::fs::metadata(dir.join("t.db-wal")).map_or(0, |m| m.len());
        (wal.saturating_sub(32) / (4096 + 24)) as i64
    }

    #[test]
    fn under_steady_writes_the_thread_copies_the_log_and_it_restarts() {
        let limits = limits(150, 100, 5_000);
        let (dir, conn, checkpoints) = filled(limits, 0);
        let mut n = 0;
        while checkpoints.counts().restarts < 4 {
            insert(&conn, n);
            n += 1;
            let restarts = checkpoints.counts().restarts;
            assert!(n < 2_000, "{restarts} restarts of the log in {n} commits");
            // Commits 5 ms apart: a pass (three syncs) has about 30 commits' time to end before
            // its tail is too long for the writer.
            std::thread::sleep(Duration::from_millis(5));
        }
        // Each restart followed a pass of the thread, which reached the log's end while the
        // writer slept or left the writer a short tail (the next test makes it leave one).
        assert!(
            checkpoints.counts().passes >= 4,
            "the thread made the passes"
        );
        assert_eq!(checkpoints.counts().at_cap, 0, "the cap never had to act");
        // The file's high-water mark: the threshold and a pass's worth of frames, where four
        // cycles wrote at least four thresholds' worth.
        let frames = log_frames(dir.path());
        assert!(frames < limits.start * 4, "the log grew to {frames} frames");
        assert_eq!(rows(&conn), n);
        // What `/metrics` reports of the log: its size since its last restart.
        let counts = checkpoints.counts();
        assert!(
            0 < counts.log_frames && counts.log_frames <= frames,
            "{} frames in a log of {frames}",
            counts.log_frames
        );
    }

    /// A reader's snapshot stops the thread's pass short of the log's end, as the commits made
    /// while a pass runs do: the writer copies the rest after its next commit, and the log
    /// restarts at the commit after.
    #[test]
    fn the_writer_copies_what_a_pass_left_and_the_log_restarts() {
        let limits = limits(40, 1_000, 100_000);
        let (dir, conn, checkpoints) = filled(limits, 10);
        let reader = Connection::open(dir.path().join("t.db")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        assert_eq!(rows(&reader), 10);
        // One commit past the threshold: the hook asks for a pass once, and runs again only
        // after the reader has let go.
        conn.execute_batch("BEGIN").unwrap();
        for n in 10..40 {
            insert(&conn, n);
        }
        conn.execute_batch("COMMIT").unwrap();
        let asked = Instant::now();
        while !checkpoints.passed() {
            assert!(asked.elapsed() < Duration::from_secs(10), "no pass ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        let backfilled = checkpoints.backfilled.load(Ordering::Acquire);
        assert!(
            backfilled > 0,
            "the pass copied what the reader's snapshot holds"
        );
        assert!(backfilled < log_frames(dir.path()), "and stopped there");
        reader.execute_batch("COMMIT").unwrap();
        insert(&conn, 40);
        assert_eq!(
            (checkpoints.counts().tails, checkpoints.counts().restarts),
            (1, 0)
        );
        insert(&conn, 41);
        assert_eq!(checkpoints.counts().restarts, 1, "the log restarted");
        assert_eq!(rows(&conn), 42);
    }

    /// The log restarts while a pass is asked for and not yet made (here the writer reaches the
    /// cap while the thread is held): the pass's figure is not trusted for a tail, whatever log
    /// it was taken on; the cycle starts again from the threshold.
    #[test]
    fn a_pass_asked_before_the_log_restarted_is_not_followed_by_a_tail() {
        let (_dir, conn, checkpoints) = filled(limits(30, 1_000, 1_000), 0);
        let held = checkpoints.gate.write().unwrap();
        let mut n = 0;
        let mut insert_until = |what: &str, pace: Duration, done: &dyn Fn() -> bool| {
            while !done() {
                assert!(n < 2_000, "{what} did not happen in {n} commits");
                insert(&conn, n);
                n += 1;
                std::thread::sleep(pace);
            }
        };
        let (flat_out, paced) = (Duration::ZERO, Duration::from_millis(5));
        insert_until("the thread taking the request", flat_out, &|| {
            checkpoints.counts().passes == 1
        });
        insert_until("a restart at the cap", flat_out, &|| {
            checkpoints.counts().restarts == 1
        });
        assert_eq!(
            checkpoints.counts().at_cap,
            1,
            "the writer checkpointed at the cap"
        );
        drop(held);
        let released = Instant::now();
        while !checkpoints.passed() {
            assert!(
                released.elapsed() < Duration::from_secs(10),
                "no pass ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        insert_until("the hook seeing the pass", flat_out, &|| {
            !checkpoints.passed()
        });
        assert_eq!(
            checkpoints.counts().tails,
            0,
            "no tail after a pass asked before the restart"
        );
        // The next cycle, at a pace the thread's pass keeps up with (as in the first test): a
        // pass asked at the threshold on the new log restarts it (with a tail or without), and
        // the cap is not what did.
        insert_until("the next restart", paced, &|| {
            checkpoints.counts().restarts == 2
        });
        assert_eq!(
            (checkpoints.counts().passes, checkpoints.counts().at_cap),
            (2, 1)
        );
        assert_eq!(rows(&conn), n);
    }

    fn limits(start: i64, tail: i64, cap: i64) -> Thresholds {
        Thresholds { start, tail, cap }
    }

    /// A store under `limits` holding `rows` rows, each committed alone.
    fn filled(limits: Thresholds, rows: i64) -> (tempfile::TempDir, Connection, Arc<Shared>) {
        let dir = tempfile::tempdir().unwrap();
        let (conn, checkpoints) = store(dir.path(), limits);
        for n in 0..rows {
            insert(&conn, n);
        }
        (dir, conn, checkpoints)
    }

    /// A pass that fails (here the database file, moved away, cannot be opened to sync it) is
    /// asked again after [`RETRY_AFTER`], and no other pass runs meanwhile.
    #[test]
    fn a_failed_pass_is_asked_again_after_a_pause() {
        let (dir, conn, checkpoints) = filled(limits(40, 1_000, 100_000), 5);
        assert_eq!(checkpoints.counts().passes, 0);
        let (path, moved) = (dir.path().join("t.db"), dir.path().join("moved.db"));
        std::fs::rename(&path, &moved).unwrap();
        let began = Instant::now();
        let mut n = 5;
        while checkpoints.counts().failed_passes < 1 {
            let waited = began.elapsed();
            assert!(waited < Duration::from_secs(10), "no pass failed");
            insert(&conn, n);
            n += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        let failed = Instant::now();
        std::fs::rename(&moved, &path).unwrap();
        while !checkpoints.passed() {
            let waited = began.elapsed();
            assert!(waited < Duration::from_secs(10), "no pass succeeded");
            insert(&conn, n);
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        let counts = checkpoints.counts();
        let passes = (counts.passes, counts.failed_passes);
        assert_eq!(passes, (2, 1), "one failed pass, then one that worked");
        assert!(failed.elapsed() >= RETRY_AFTER - Duration::from_millis(50));
        assert_eq!(rows(&conn), n);
    }

    /// SQLite's own automatic checkpoint (every 1,000 frames) is off, and nothing else runs
    /// under the threshold: the disk-full story depends on it.
    #[test]
    fn a_log_under_the_threshold_is_never_checkpointed() {
        let limits = limits(3_000, 100, 100_000);
        let (dir, _conn, checkpoints) = filled(limits, 500);
        let counts = checkpoints.counts();
        let counts = (counts.passes, counts.tails, counts.at_cap, counts.restarts);
        assert_eq!(counts, (0, 0, 0, 0));
        // Every frame is still in the log: past 1,000, so SQLite's default did not restart it.
        assert!(log_frames(dir.path()) > 1_000);
    }

    #[test]
    fn the_writer_checkpoints_itself_at_the_cap_when_no_pass_comes() {
        let never = limits(i64::MAX, 0, 40);
        let (dir, conn, checkpoints) = filled(never, 400);
        assert_eq!(checkpoints.counts().passes, 0);
        assert!(checkpoints.counts().at_cap > 0);
        assert!(checkpoints.counts().restarts > 0);
        let frames = log_frames(dir.path());
        assert!(frames < 100, "the log grew to {frames} frames past its cap");
        assert_eq!(rows(&conn), 400);
    }

    #[test]
    fn closing_the_writer_ends_the_thread_and_keeps_every_row() {
        let limits = limits(40, 16, 400);
        let (dir, conn, checkpoints) = filled(limits, 120);
        // A pass was asked for (120 rows are past 40 frames); it may be running as the
        // connection closes.
        drop(conn);
        // The hook's drop joined the thread, which held the other reference.
        assert_eq!(Arc::strong_count(&checkpoints), 1);
        let reopened = Connection::open(dir.path().join("t.db")).unwrap();
        assert_eq!(rows(&reopened), 120);
    }
}
