//! The store's files are private to the relay's user: the data dir 0700, the database and its
//! `-wal`/`-shm` companions 0600, whatever the umask. SQLite gives the companions the main
//! file's mode, so the main file is created 0600 before SQLite first opens it.

use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents, also 0700 before the umask) if needed; the data dir
/// this call creates is made exactly 0700. An existing dir is the operator's choice.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    set_mode(dir, 0o700)
}

/// Creates the database file 0600 if it is missing, and brings an existing database and its
/// companions (left by an older relay) to 0600 where this user may.
pub fn create_files(db: &Path) -> io::Result<()> {
    create_private_file(db)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let companion = Path::new(&name);
        if companion.exists() {
            tighten(companion);
        }
    }
    Ok(())
}

/// Best effort for files that already exist: another user may own them (then SQLite's own
/// permission check decides whether we can use them at all).
fn tighten(path: &Path) {
    if let Err(e) = set_mode(path, 0o600) {
        tracing::warn!(path = %path.display(), error = %e, "could not make a store file private (0600)");
    }
}

/// Creates `path` empty and 0600 if it does not exist; makes an existing one 0600.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        tighten(path);
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    // The umask may have taken bits from 0600 too (e.g. 0200 would leave it read-only).
    set_mode(path, 0o600)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}
